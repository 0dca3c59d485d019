"""The ceiling for B5: a bare Starlette endpoint under uvicorn with the settings ``tokenwise run``
uses, answering the same POST with a small JSON body and no work."""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.web import serve_workers

ANSWER = {"response_type": "ephemeral", "text": "Your AI spend: $0.00", "blocks": []}


async def slack_events(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse(ANSWER)


app = Starlette(routes=[Route("/slack/events", slack_events, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # The same uvicorn options as bot/cli/serve.py's ``run``, and the same server for several workers.
    serve = uvicorn.run if args.workers == 1 else serve_workers
    serve(
        "bench.bare_app:app",
        workers=args.workers,
        host="127.0.0.1",
        port=args.port,
        log_level="info",
        timeout_keep_alive=5,
        limit_concurrency=1000,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
