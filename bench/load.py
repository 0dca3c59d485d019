"""B5: signed ``/tokens me`` over loopback HTTP against ``tokenwise run --workers W`` (uvicorn, a
subprocess with the bench database and the fake Slack), N keep-alive clients for T seconds; then
the same load against a bare Bolt app that verifies the signature and acks (the framework's floor,
``bench/bare_bolt.py``) and a bare Starlette endpoint (the ceiling, ``bench/bare_app.py``), under
the same uvicorn settings and worker count.

The load generator speaks HTTP/1.1 on raw asyncio streams: an HTTP client library would spend
more CPU than the server on this 2-core machine and measure itself.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import synth
from bench.slack import FakeSlack, command_body, server_env, signed_headers
from bench.stats import summarize

REPO = Path(__file__).resolve().parent.parent
START_SECONDS = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env() -> dict[str, str]:
    """The parent's environment without any real Slack or vendor credentials."""
    prefixes = (
        "SLACK_",
        "OPENAI_",
        "ANTHROPIC_",
        "CURSOR_",
        "GITHUB_",
        "OPENROUTER_",
        "WINDSURF_",
        "TOKENWISE_",
    )
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(prefixes) and k not in ("DATABASE_URL", "PORT")
    }


class Server:
    def __init__(self, command: list[str], env: dict[str, str], port: int, log_path: Path) -> None:
        self.port = port
        self.log = log_path.open("wb")
        self.workdir = tempfile.TemporaryDirectory(prefix="tokenwise-bench-")  # no stray tokenwise.toml
        self.process = subprocess.Popen(
            command, env=env, cwd=self.workdir.name, stdout=self.log, stderr=subprocess.STDOUT
        )
        # Imports, settings, migrations and N workers on a busy 2-core machine: minutes, not seconds.
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {log_path}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        self.close()
        raise RuntimeError(f"server did not listen on {port} within {START_SECONDS} s; see {log_path}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()
        self.workdir.cleanup()


def tokenwise_server(fake: FakeSlack, database_url: str, log_path: Path, workers: int) -> Server:
    port = free_port()
    script = Path(sys.executable).parent / "tokenwise"
    command = [str(script)] if script.exists() else [sys.executable, "-c", "from bot.cli import main; main()"]
    env = {**_clean_env(), **server_env(fake, database_url), "PYTHONPATH": str(REPO)}
    options = ["--no-scheduler", "--port", str(port), "--workers", str(workers)]
    return Server([*command, "run", *options], env, port, log_path)


def bare_server(module: str, log_path: Path, workers: int) -> Server:
    """``bench.bare_app`` (Starlette alone) or ``bench.bare_bolt`` (Bolt's own floor)."""
    port = free_port()
    env = {**_clean_env(), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", module, "--port", str(port), "--workers", str(workers)]
    return Server(command, env, port, log_path)


def _request(port: int, text: str, user_id: str) -> bytes:
    body = command_body(text, user_id)
    headers = signed_headers(body)
    head = (
        f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body.encode()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def _load(port: int, users: list[str], text: str, clients: int, seconds: float, expect: bytes) -> dict:
    timings: list[float] = []
    errors: dict[str, int] = {}
    stop_at = time.perf_counter() + seconds

    def error(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def client(number: int) -> None:
        reader = writer = None
        sent = number
        while time.perf_counter() < stop_at:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                request = _request(port, text, users[sent % len(users)])
                sent += clients
                started = time.perf_counter()
                writer.write(request)
                status, body = await _read_response(reader)
                timings.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    error(f"HTTP {status}")
                elif expect not in body:
                    error("unexpected answer")
            except (OSError, asyncio.IncompleteReadError, ValueError) as failure:
                error(type(failure).__name__)
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        **summarize(timings),
        "requests": len(timings),
        "seconds": elapsed,
        "rps": len(timings) / elapsed,
        "errors": sum(errors.values()),
        "error_kinds": errors,
    }


def run(
    database_url: str,
    fake: FakeSlack,
    *,
    people: list[int],
    clients: int,
    seconds: float,
    workers: int,
    log_dir: Path,
    log,
) -> dict:
    users = [synth.slack_id(p) for p in people]
    text = f"me {synth.REPORT_MONTH}"
    log_dir.mkdir(parents=True, exist_ok=True)
    log(f"B5: tokenwise run under uvicorn, {workers} worker(s), {clients} clients for {seconds:.0f} s")
    server = tokenwise_server(fake, database_url, log_dir / "b5-tokenwise.log", workers)
    try:
        warmed = _warm(server.port, users, text, workers, fake)
        app = asyncio.run(_load(server.port, users, text, clients, seconds, b"Your AI spend"))
    finally:
        server.close()
    floor = _bare_load(
        "bench.bare_bolt",
        "bare Bolt app",
        port_text=text,
        users=users,
        clients=clients,
        seconds=seconds,
        workers=workers,
        log_path=log_dir / "b5-bolt.log",
        log=log,
    )
    ceiling = _bare_load(
        "bench.bare_app",
        "bare Starlette endpoint",
        port_text=text,
        users=users,
        clients=clients,
        seconds=seconds,
        workers=workers,
        log_path=log_dir / "b5-bare.log",
        log=log,
    )
    return {
        "clients": clients,
        "seconds": seconds,
        "users": len(users),
        "workers": workers,
        "warm_users_info": warmed,
        "app": app,
        "bolt": floor,
        "bare": ceiling,
        # Side by side in one run, so the machine's load cancels out: the share of Bolt's own floor
        # and of the bare ceiling that the app reaches.
        "of_bolt": app["rps"] / floor["rps"] if floor["rps"] else 0.0,
        "of_bare": app["rps"] / ceiling["rps"] if ceiling["rps"] else 0.0,
    }


def _bare_load(
    module: str,
    what: str,
    *,
    port_text: str,
    users: list[str],
    clients: int,
    seconds: float,
    workers: int,
    log_path: Path,
    log,
) -> dict:
    log(f"B5: {what}, {workers} worker(s), {clients} clients for {seconds:.0f} s")
    server = bare_server(module, log_path, workers)
    try:
        asyncio.run(_load(server.port, users, port_text, clients, 1.0, b""))  # warm-up, unmeasured
        return asyncio.run(_load(server.port, users, port_text, clients, seconds, b"Your AI spend"))
    finally:
        server.close()


def _warm(port: int, users: list[str], text: str, workers: int, fake: FakeSlack) -> int:
    """Unmeasured: every user at least once in each worker, so users.info is cached everywhere.
    A connection stays with the worker that accepted it, and which one does is the kernel's
    choice, so this sends rounds of two connections per worker (each through every user, from
    staggered starts so no two ask about one user at once) until a round asks Slack nothing new
    and each worker could have asked about every user (at most 60 s). Returns the calls made."""
    before = fake.calls.get("users.info", 0)
    deadline = time.monotonic() + 60
    connections = 2 * workers

    async def one_connection(number: int) -> None:
        start = number * len(users) // connections
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for user in users[start:] + users[:start]:
                writer.write(_request(port, text, user))
                await _read_response(reader)
        finally:
            writer.close()

    async def round_() -> None:
        await asyncio.gather(*(one_connection(n) for n in range(connections)))

    while True:
        calls = fake.calls.get("users.info", 0)
        asyncio.run(round_())
        made = fake.calls.get("users.info", 0) - before
        quiet = fake.calls.get("users.info", 0) == calls
        if (quiet and made >= len(users) * workers) or time.monotonic() > deadline:
            return made
