"""``otel_group_commit.GroupCommit``'s bounds (SQLite and PostgreSQL): requests waiting together go into one
transaction up to ``max_points`` points, the rest into the next; each request's points are
stored whatever group it went into."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select

from bot.db.models import UsageDaily
from bot.observability import REGISTRY
from bot.services.otel_group_commit import GroupCommit
from bot.sources.otel import otlp
from tests.support.otel import DELTA, ClaudeCode, claude_person

LIMITS = otlp.Limits(max_bytes=1_000_000, max_points=1_000, max_people=10, max_age_days=30)


def _decoded(email: str, tokens: int) -> otlp.Decoded:
    agent = ClaudeCode(DELTA)
    agent.use(claude_person(email), input=tokens, output=1)
    body = agent.protobuf()
    return otlp.decode(
        otlp.METRICS, body, content_type=otlp.PROTOBUF, encoding="", limits=LIMITS, now_ns=time.time_ns()
    )


def _groups() -> tuple[float, float]:
    count = REGISTRY.get_sample_value("tokenwise_otlp_group_requests_count") or 0.0
    return count, REGISTRY.get_sample_value("tokenwise_otlp_group_requests_sum") or 0.0


def test_a_group_holds_at_most_max_points_and_the_rest_go_into_the_next(engine):
    requests = [_decoded(f"p{n}@example.com", 10 * (n + 1)) for n in range(3)]
    per_request = len(requests[0].points)
    intake = GroupCommit(engine, max_points=2 * per_request)
    before = _groups()

    async def everyone() -> list[int]:  # all three waiting before the first group is taken
        return await asyncio.gather(*(intake.submit("W", decoded) for decoded in requests))

    assert asyncio.run(everyone()) == [per_request] * 3
    count, in_groups = _groups()
    assert (count - before[0], in_groups - before[1]) == (2, 3)  # two, then one
    with engine.connect() as conn:
        stored = dict(
            conn.execute(
                select(UsageDaily.actor, func.sum(UsageDaily.input_tokens)).group_by(UsageDaily.actor)
            ).all()
        )
    assert stored == {"email:p0@example.com": 10, "email:p1@example.com": 20, "email:p2@example.com": 30}
