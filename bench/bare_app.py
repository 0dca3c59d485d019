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


def serve(app_path: str, argv: list[str] | None = None) -> None:
    """Serve ``app_path`` (an import string) on ``--port`` with ``--workers``: the same uvicorn
    options as bot/cli/serve.py's ``run``, and the same server for several workers. The bare
    Bolt floor (``bench.bare_bolt``) is served by this too."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    run = uvicorn.run if args.workers == 1 else serve_workers
    run(
        app_path,
        workers=args.workers,
        host="127.0.0.1",
        port=args.port,
        log_level="info",
        timeout_keep_alive=5,
        limit_concurrency=1000,
        proxy_headers=True,
    )


def main() -> None:
    serve("bench.bare_app:app")


if __name__ == "__main__":
    main()
