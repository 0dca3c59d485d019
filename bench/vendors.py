"""Vendor-shaped data for the ingest benchmarks (B1, B6), and a loopback server that serves it.

The org: people who use OpenAI's API (tokens per user, dollars per API key, as the Usage and
Costs APIs report them) and Cursor (one filtered-usage event per request). ``expected_rows``
gives the rows the sync engine must end up storing, computed from the plan and not from the
pages, so it checks the connectors and the engine as much as it feeds the baseline.

The server runs in its own process (``python -m bench.vendors --port 0 ...``) and renders every
page before it says it is ready, so the engine's time is spent on HTTP, parsing and storing, as
in production, not on generating the vendor's answer.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from bench.synth import DOMAIN, WORKSPACE

OPENAI_MODELS = (
    # name, weight, micro-USD per input token, per output token, typical thousands of input tokens
    ("gpt-4o-2024-08-06", 5, 3, 10, 60),
    ("gpt-4o-mini-2024-07-18", 6, 1, 1, 120),
    ("gpt-4.1-2025-04-14", 4, 2, 8, 80),
    ("o4-mini-2025-04-16", 3, 1, 4, 60),
    ("gpt-5-2025-08-07", 4, 1, 10, 70),
)
CURSOR_MODELS = (
    ("claude-4-sonnet", 6, 3, 15, 30),
    ("gpt-5", 4, 1, 10, 30),
    ("auto", 5, 1, 5, 40),
    ("claude-4-opus", 1, 15, 75, 10),
)
PROJECTS = 50
#: Largest number of results the fake puts in one OpenAI page. ``limit`` counts buckets and is a
#: maximum, so a big day still comes back as one bucket per page with ``has_more``.
MAX_RESULTS_PER_PAGE = 5000
CURSOR_WINDOW_DAYS = 30
OPENAI_WINDOW_DAYS = 31


def epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


@dataclass
class IngestPerson:
    index: int
    rng: random.Random
    intensity: float
    openai: list[tuple[tuple, float]] = field(default_factory=list)  # (model, daily chance)
    cursor: list[tuple[tuple, float]] = field(default_factory=list)

    @property
    def email(self) -> str:
        return f"p{self.index}@{DOMAIN}"


def _pick(rng: random.Random, catalog: tuple, count: int) -> list[tuple]:
    chosen: list[tuple] = []
    weights = [m[1] for m in catalog]
    while len(chosen) < min(count, len(catalog)):
        model = rng.choices(catalog, weights)[0]
        if model not in chosen:
            chosen.append(model)
    return chosen


def make_people(seed: int, people: int) -> list[IngestPerson]:
    found = []
    for index in range(1, people + 1):
        rng = random.Random(f"{seed}:ingest:{index}")
        person = IngestPerson(index, rng, rng.lognormvariate(0.0, 1.0))
        if rng.random() < 0.6:
            models = _pick(rng, OPENAI_MODELS, 1 + int(rng.expovariate(1.2)))
            person.openai = [(m, 0.26 / (rank + 1)) for rank, m in enumerate(models)]
        if rng.random() < 0.65:
            models = _pick(rng, CURSOR_MODELS, 1 + int(rng.expovariate(1.2)))
            person.cursor = [(m, 0.42 / (rank + 1)) for rank, m in enumerate(models)]
        found.append(person)
    return found


@dataclass
class DayData:
    day: date
    usage_results: list[dict]  # OpenAI completions usage results of the day
    cost_results: list[dict]  # OpenAI costs results of the day
    events: list[dict]  # Cursor filtered usage events of the day
    rows: dict[str, list[tuple]]  # source -> expected stored rows (synth.USAGE_COLUMNS order)


def _row(
    source: str, day: str, actor: str, person: int, model: str, tokens: tuple, cost: int, raw: str, unit: str
):
    return (
        WORKSPACE,
        source,
        source,
        day,
        actor,
        person,
        model,
        "billed",
        "usage",
        *tokens,
        cost,
        raw,
        unit,
        True,
        None,
    )


def generate(seed: int, people: int, start: date, days: int) -> Iterator[DayData]:
    """Day by day: what the vendors report, and what must be stored."""
    persons = make_people(seed, people)
    for offset in range(days):
        day = start + timedelta(days=offset)
        iso = day.isoformat()
        factor = 0.4 if day.weekday() >= 5 else 1.0
        usage_results, cost_results, events = [], [], []
        openai_rows, cursor_rows = [], []
        day_ms = epoch(day) * 1000
        for person in persons:
            rng = person.rng
            for model, chance in person.openai:
                if rng.random() >= chance * factor:
                    continue
                name, _, price_in, price_out, scale = model
                total_in = int(scale * 1000 * person.intensity * rng.lognormvariate(0, 0.7))
                cached = int(total_in * rng.uniform(0, 0.4))
                output = int(total_in * rng.uniform(0.05, 0.3))
                requests = max(1, total_in // 3000)
                usage_results.append(
                    {
                        "object": "organization.usage.completions.result",
                        "input_tokens": total_in,
                        "input_cached_tokens": cached,
                        "output_tokens": output,
                        "input_audio_tokens": 0,
                        "input_cached_audio_tokens": 0,
                        "output_audio_tokens": 0,
                        "input_text_tokens": total_in,
                        "output_text_tokens": output,
                        "input_cached_text_tokens": cached,
                        "input_image_tokens": 0,
                        "output_image_tokens": 0,
                        "num_model_requests": requests,
                        "project_id": None,
                        "user_id": f"user-{person.index}",
                        "api_key_id": f"key-{person.index}",
                        "model": name,
                        "batch": None,
                        "service_tier": None,
                    }
                )
                openai_rows.append(
                    _row(
                        "openai",
                        iso,
                        f"openai_user:user-{person.index}",
                        person.index,
                        name,
                        (total_in - cached, output, cached, 0, requests),
                        0,
                        "0",
                        "usd",
                    )
                )
                # Dollars per line item, exact to the micro-dollar (six decimals in the JSON).
                input_micros = (total_in - cached) * price_in + cached * price_in // 2
                output_micros = output * price_out
                for suffix, micros in (("input", input_micros), ("output", output_micros)):
                    cost_results.append(
                        {
                            "object": "organization.costs.result",
                            "amount": {"value": _Raw(f"{micros / 1_000_000:.6f}"), "currency": "usd"},
                            "line_item": f"{name}, {suffix}",
                            "project_id": f"proj-{person.index % PROJECTS}",
                            "api_key_id": f"key-{person.index}",
                            "organization_id": "org-bench",
                            "quantity": None,
                            "quantity_unit": None,
                        }
                    )
                total = input_micros + output_micros
                openai_rows.append(
                    _row(
                        "openai",
                        iso,
                        f"openai_key:key-{person.index}",
                        person.index,
                        name,
                        (0, 0, 0, 0, 0),
                        total,
                        _usd_sum(input_micros, output_micros),
                        "usd",
                    )
                )
            for model, chance in person.cursor:
                if rng.random() >= chance * factor:
                    continue
                name, _, price_in, price_out, scale = model
                count = 1 + int(rng.expovariate(0.5))  # requests that day: heavy-tailed, mean 3
                sums = [0, 0, 0, 0, 0]  # tenth-thousandths of a cent, in, out, cache read, cache write
                for _ in range(count):
                    inp = int(scale * 100 * person.intensity * rng.lognormvariate(0, 0.6))
                    out = int(inp * rng.uniform(0.5, 3))
                    cache_read = int(inp * rng.uniform(0, 8))
                    cache_write = int(inp * rng.uniform(0, 2))
                    # micro-USD = 1/10,000 cent: cents with four decimals are exact.
                    micros = inp * price_in + out * price_out + cache_read * price_in // 10
                    sums[0] += micros
                    sums[1] += inp
                    sums[2] += out
                    sums[3] += cache_read
                    sums[4] += cache_write
                    events.append(
                        {
                            "timestamp": str(day_ms + rng.randrange(86_400_000)),
                            "model": name,
                            "kind": "Usage-based",
                            "maxMode": rng.random() < 0.1,
                            "requestsCosts": 1,
                            "isTokenBasedCall": True,
                            "tokenUsage": {
                                "inputTokens": inp,
                                "outputTokens": out,
                                "cacheWriteTokens": cache_write,
                                "cacheReadTokens": cache_read,
                                "totalCents": _Raw(f"{micros / 10_000:.4f}"),
                            },
                            "isFreeBugbot": False,
                            "userEmail": person.email,
                        }
                    )
                cursor_rows.append(
                    _row(
                        "cursor",
                        iso,
                        f"email:{person.email}",
                        person.index,
                        name,
                        (sums[1], sums[2], sums[3], sums[4], count),
                        sums[0],
                        "",
                        "usd_cents",
                    )
                )
        yield DayData(
            day, usage_results, cost_results, events, {"openai": openai_rows, "cursor": cursor_rows}
        )


def _usd_sum(*micros: int) -> str:
    return str(sum(micros) / 1_000_000)


class _Raw(str):
    """A JSON number written verbatim (so amounts are the exact decimals a vendor sends)."""


def _encode(value) -> bytes:
    """JSON with ``_Raw`` strings emitted as bare numbers."""

    def mark(item):
        if isinstance(item, _Raw):
            return "\u0000" + item + "\u0000"
        if isinstance(item, dict):
            return {k: mark(v) for k, v in item.items()}
        if isinstance(item, list):
            return [mark(v) for v in item]
        return item

    text = json.dumps(mark(value), separators=(",", ":"))
    return text.replace('"\\u0000', "").replace('\\u0000"', "").encode()


# -- the server ----------------------------------------------------------------------------


class VendorData:
    """Every page fragment, rendered once: buckets per day, events per day, identity lists."""

    def __init__(self, seed: int, people: int, start: date, days: int) -> None:
        self.start = start
        self.days = days
        self.usage_buckets: dict[int, tuple[bytes, int]] = {}  # epoch -> (bucket JSON, results)
        self.cost_buckets: dict[int, tuple[bytes, int]] = {}
        self.events: dict[date, list[bytes]] = {}
        openai_people, cursor_people = set(), set()
        for data in generate(seed, people, start, days):
            begin, end = epoch(data.day), epoch(data.day + timedelta(days=1))
            for store, results in (
                (self.usage_buckets, data.usage_results),
                (self.cost_buckets, data.cost_results),
            ):
                body = b",".join(_encode(r) for r in results)
                head = f'{{"object":"bucket","start_time":{begin},"end_time":{end},"results":['.encode()
                store[begin] = (head + body + b"]}", len(results))
            self.events[data.day] = [_encode(e) for e in data.events]
            openai_people.update(int(r[5]) for r in data.rows["openai"])
            cursor_people.update(int(r[5]) for r in data.rows["cursor"])
        self.openai_people = sorted(openai_people)
        self.cursor_people = sorted(cursor_people)
        self._windows: dict[tuple[int, int], list[bytes]] = {}
        self._lock = threading.Lock()

    # OpenAI ---------------------------------------------------------------------------
    def openai_list(self, path: str, query: dict) -> dict:
        limit = int(query.get("limit", ["20"])[0])
        after = query.get("after", [None])[0]
        if path == "organization/users":
            items = [
                {
                    "object": "organization.user",
                    "id": f"user-{n}",
                    "name": f"Person {n}",
                    "email": f"p{n}@{DOMAIN}",
                    "role": "reader",
                    "added_at": 1711471533,
                }
                for n in self.openai_people
            ]
        elif path == "organization/projects":
            items = [
                {
                    "id": f"proj-{n}",
                    "object": "organization.project",
                    "name": f"Project {n}",
                    "status": "active",
                }
                for n in range(PROJECTS)
            ]
        else:
            project = int(path.split("/")[2].removeprefix("proj-"))
            items = [
                {
                    "object": "organization.project.api_key",
                    "redacted_value": "sk-...abcd",
                    "name": f"key of person {n}",
                    "id": f"key-{n}",
                    "owner": {
                        "type": "user",
                        "user": {
                            "object": "organization.project.user",
                            "id": f"user-{n}",
                            "name": f"Person {n}",
                            "email": f"p{n}@{DOMAIN}",
                            "role": "member",
                        },
                    },
                }
                for n in self.openai_people
                if n % PROJECTS == project
            ]
        ids = [item["id"] for item in items]
        begin = ids.index(after) + 1 if after in ids else 0
        page = items[begin : begin + limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": begin + limit < len(items),
        }

    def openai_buckets(self, buckets: dict, query: dict) -> bytes:
        start, end = int(query["start_time"][0]), int(query["end_time"][0])
        limit = int(query.get("limit", ["7"])[0])
        cursor = int(query["page"][0].removeprefix("page_")) if "page" in query else start
        parts, results = [], 0
        while cursor < end and len(parts) < limit:
            body, count = buckets.get(cursor, (None, 0))
            if body is None:
                body = f'{{"object":"bucket","start_time":{cursor},"end_time":{cursor + 86400},"results":[]}}'
                body = body.encode()
            if parts and results + count > MAX_RESULTS_PER_PAGE:
                break
            parts.append(body)
            results += count
            cursor += 86400
        more = cursor < end
        next_page = json.dumps(f"page_{cursor}" if more else None)
        tail = f'],"has_more":{"true" if more else "false"},"next_page":{next_page}}}'
        return b'{"object":"page","data":[' + b",".join(parts) + tail.encode()

    # Cursor ---------------------------------------------------------------------------
    def cursor_members(self) -> bytes:
        members = [
            {"name": f"Person {n}", "email": f"p{n}@{DOMAIN}", "role": "member", "id": n}
            for n in self.cursor_people
        ]
        return _encode({"teamMembers": members})

    def cursor_events(self, payload: dict) -> bytes:
        start_ms, end_ms = int(payload["startDate"]), int(payload["endDate"])
        page, size = int(payload.get("page", 1)), int(payload.get("pageSize", 100))
        with self._lock:
            events = self._windows.get((start_ms, end_ms))
            if events is None:
                events = []
                day = datetime.fromtimestamp(start_ms / 1000, UTC).date()
                while epoch(day) * 1000 <= end_ms:
                    events.extend(self.events.get(day, []))
                    day += timedelta(days=1)
                self._windows = {(start_ms, end_ms): events}  # the connector reads one window at a time
        pages = max(1, -(-len(events) // size))
        chunk = events[(page - 1) * size : page * size]
        head = {
            "totalUsageEventsCount": len(events),
            "pagination": {
                "numPages": pages,
                "currentPage": page,
                "pageSize": size,
                "hasNextPage": page < pages,
                "hasPreviousPage": page > 1,
            },
            "period": {"startDate": start_ms, "endDate": end_ms},
        }
        return _encode(head)[:-1] + b',"usageEvents":[' + b",".join(chunk) + b"]}"


def make_handler(data: VendorData):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, Nagle and delayed ACKs add
            # 40 ms to every response on loopback, and the engine would be timed waiting for it.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, body: bytes, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            path = url.path
            if path.startswith("/openai/v1/"):
                rest = path.removeprefix("/openai/v1/")
                if rest == "organization/usage/completions":
                    return self._send(data.openai_buckets(data.usage_buckets, query))
                if rest == "organization/costs":
                    return self._send(data.openai_buckets(data.cost_buckets, query))
                if rest in ("organization/users", "organization/projects") or rest.endswith("/api_keys"):
                    return self._send(_encode(data.openai_list(rest, query)))
            if path == "/cursor/teams/members":
                return self._send(data.cursor_members())
            if path == "/ready":
                return self._send(b'{"ok":true}')
            self._send(b'{"error":"not found"}', 404)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            payload = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/cursor/teams/daily-usage-data":
                return self._send(b'{"data":[]}')
            if self.path == "/cursor/teams/filtered-usage-events":
                return self._send(data.cursor_events(payload))
            self._send(b'{"error":"not found"}', 404)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the bench org's vendor APIs on loopback.")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--people", type=int, required=True)
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--days", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    data = VendorData(args.seed, args.people, args.start, args.days)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(data))
    server.daemon_threads = True
    print(json.dumps({"port": server.server_address[1]}), flush=True)  # the parent waits for this line
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
