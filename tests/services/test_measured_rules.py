"""When a PR's cost is measured and when it stays apportioned: the rules of
``cost_per_pr.load_measured`` over real rows (SQLite and PostgreSQL), and the pool a measured PR
leaves to the author's other PRs."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import update

from bot.db import rollups
from bot.db.models import Identity, OtelSessionDaily, PullRequest
from bot.services.value.cost_per_pr import APPORTIONED, MEASURED, PrWork, apportion, load_pr_costs
from tests.support.value import W, add_merged_pr, add_person, add_usage

D = date(2026, 11, 2)


def _session(conn, actor: str, session: str, day: date, micros: int, *, source="otel_claude_code") -> None:
    conn.execute(
        OtelSessionDaily.__table__.insert().values(
            workspace_id=W,
            source=source,
            day=day,
            actor=actor,
            session=session,
            cost_micros=micros,
            tokens=1000,
        )
    )


def _names(conn, number: int, sessions: str) -> None:
    conn.execute(update(PullRequest).where(PullRequest.number == number).values(session_ids=sessions))


def _costs(engine, person: int) -> dict[int, tuple[int, str]]:
    with engine.connect() as conn:
        costs = load_pr_costs(conn, workspace_id=W, person_ids=[person], start=D, end=D + timedelta(days=7))
    return {c.number: (c.micros, c.basis) for c in costs}


def test_measured_only_for_the_authors_own_priced_sessions(engine):
    with engine.begin() as conn:
        ana, ben = add_person(conn, "ana"), add_person(conn, "ben")
        for person, name in ((ana, "ana"), (ben, "ben")):
            conn.execute(
                Identity.__table__.insert().values(
                    workspace_id=W, actor=f"email:{name}@example.com", person_id=person, origin="email"
                )
            )
        for number in (1, 2, 3, 4, 5):
            add_merged_pr(conn, ana, number, D, D)
        add_usage(conn, ana, D, 10_000_000)
        _session(conn, "email:ana@example.com", "s-ana", D, 1_000_000)
        _session(conn, "email:ana@example.com", "s-ana", D - timedelta(days=1), 200_000)  # before the span
        _session(conn, "email:ben@example.com", "s-ben", D, 3_000_000)
        _session(conn, "email:ana@example.com", "c-codex", D, 0, source="otel_codex")  # tokens only
        _names(conn, 1, "s-ana")  # triggered: ana's own Claude Code session
        _names(conn, 2, "s-ben")  # ben's session in ana's PR: not hers to measure
        _names(conn, 3, "c-codex")  # Codex sends no cost: never a silent $0
        _names(conn, 4, "s-unknown")  # no telemetry for it
        rollups.rebuild(conn)
    costs = _costs(engine, ana)
    assert costs[1] == (1_200_000, MEASURED)  # every day of the session, the one before the span too
    # The day's 10.00 less the 1.00 #1 took that day, shared by the four others.
    assert {n: costs[n] for n in (2, 3, 4, 5)} == {n: (2_250_000, APPORTIONED) for n in (2, 3, 4, 5)}


def test_a_session_named_by_two_prs_is_split_between_them_exactly(engine):
    with engine.begin() as conn:
        ana = add_person(conn, "ana")
        conn.execute(
            Identity.__table__.insert().values(
                workspace_id=W, actor="email:ana@example.com", person_id=ana, origin="email"
            )
        )
        add_merged_pr(conn, ana, 1, D, D)
        add_merged_pr(conn, ana, 2, D, D + timedelta(days=1))
        _session(conn, "email:ana@example.com", "s-1", D, 1_000_001)
        _names(conn, 1, "s-1")
        _names(conn, 2, "s-1 s-other")
        rollups.rebuild(conn)
    assert _costs(engine, ana) == {1: (500_001, MEASURED), 2: (500_000, MEASURED)}


def test_a_measured_prs_day_outside_its_span_is_not_shared_again():
    a = PrWork(1, 7, "acme/api", 1, D + timedelta(days=1), D + timedelta(days=1))  # measured
    b = PrWork(2, 7, "acme/api", 2, D, D)
    costs = {c.pr_id: c for c in apportion([a, b], {(7, D): 3_000_000}, measured={1: {D: 1_000_000}})}
    assert (costs[1].micros, costs[1].basis) == (1_000_000, MEASURED)
    assert (costs[2].micros, costs[2].basis) == (2_000_000, APPORTIONED)
    assert costs[1].micros + costs[2].micros == 3_000_000
