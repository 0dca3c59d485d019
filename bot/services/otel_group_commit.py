"""Group commit for the web app's OTLP requests: many requests, one transaction.

The intake's storing rules (raw points once, people, the double-count rule, rollups) are in
``services.otel``; this module only decides which requests share a transaction and answers each
after its group's commit (docs/reliability.md, docs/benchmarks.md B7).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

from bot.observability import OTLP_GROUPS, OTLP_WAITING, OTLP_WRITING
from bot.services.otel import ingest_group
from bot.sources.otel.otlp import Decoded


class GroupCommit:
    """Group commit for the web app's OTLP requests (one per process and event loop).

    A request that arrives while a group is being written waits, and every request waiting when
    that group's commit is done goes into the next one (at most ``max_requests`` requests and
    ``max_points`` points): one transaction and one commit for many requests, with no added
    delay for a lone request.
    ``submit`` returns only after the commit of its request's group. When a group fails, its
    requests are stored again each alone, so a bad request gets the error it would have got alone
    and the others are stored; a resent request never double counts (points are stored once).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        retention_days: int | None = None,
        max_requests: int = 64,
        max_points: int = 50_000,
    ) -> None:
        self.engine = engine
        self.retention_days = retention_days
        self.max_requests = max_requests
        self.max_points = max_points  # a group's points (a first request over it goes alone)
        self._waiting: list[tuple[str, Decoded, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def submit(self, workspace_id: str, decoded: Decoded) -> int:
        """The request's points written, once its group is committed (or its error)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((workspace_id, decoded, future))
        OTLP_WAITING.set(len(self._waiting))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write())
        return await future

    async def _write(self) -> None:
        while self._waiting:
            size, points = 1, len(self._waiting[0][1].points)
            while size < min(self.max_requests, len(self._waiting)):
                points += len(self._waiting[size][1].points)
                if points > self.max_points:
                    break
                size += 1
            group = self._waiting[:size]
            del self._waiting[:size]
            OTLP_WAITING.set(len(self._waiting))
            OTLP_WRITING.set(len(group))
            try:
                outcomes = await asyncio.to_thread(self._store, [(w, d) for w, d, _ in group])
            except BaseException as error:  # cancelled (shutdown): nobody waits forever
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(error)
                raise
            finally:
                OTLP_WRITING.set(0)
            for (_, _, future), outcome in zip(group, outcomes, strict=True):
                if future.done():  # the client went away: its points are stored all the same
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _store(self, requests: list[tuple[str, Decoded]]) -> list[int | BaseException]:
        try:
            counts: list[int | BaseException] = list(
                ingest_group(self.engine, requests, retention_days=self.retention_days)
            )
            OTLP_GROUPS.observe(len(requests))
            return counts
        except Exception as error:
            if len(requests) == 1:
                return [error]
        # The group rolled back whole: each request alone, as it would have been stored.
        outcomes: list[int | BaseException] = []
        for request in requests:
            try:
                outcomes.append(ingest_group(self.engine, [request], retention_days=self.retention_days)[0])
                OTLP_GROUPS.observe(1)
            except Exception as error:
                outcomes.append(error)
        return outcomes
