"""A hand-made ``Recap`` for the pure builder tests (blocks and chart): eight weeks, newest first."""

from __future__ import annotations

from datetime import date, timedelta

from bot.db.models import Team
from bot.domain.periods import Period
from bot.services.recap.model import Recap
from bot.services.recap.rules import AGAINST, FOR, Finding, RecapFacts, WeekTotal
from bot.services.reports import Value

MONDAY = date(2026, 3, 9)


def week(n: int, spend: int, estimated: int = 0, lines: int = 0, active: int = 6) -> WeekTotal:
    """Week ``n`` back from MONDAY; amounts in whole dollars."""
    return WeekTotal(
        MONDAY - timedelta(weeks=n),
        spend_micros=spend * 1_000_000,
        estimated_micros=estimated * 1_000_000,
        ai=Value("ai", lines_accepted=lines),
        active_people=active,
        has_data=bool(spend or lines),
    )


def finding(side: str, n: int) -> Finding:
    return Finding(f"rule{n}", side, f"Finding {n} with its numbers.", {})


def make_recap(
    weeks: list[WeekTotal] | None = None, *, case_for: int = 0, case_against: int = 0, **extra
) -> Recap:
    weeks = weeks or [week(n, 1200 - 100 * n, 300, 12_000 - 500 * n) for n in range(8)]
    return Recap(
        scope_name="#payments",
        scope_team=Team(id=1, workspace_id="default", kind="channel", slack_id="CPAYMENTS", name="payments"),
        period=Period(MONDAY, MONDAY + timedelta(days=7), f"week of {MONDAY:%b %-d}"),
        facts=RecapFacts(weeks=weeks),
        vendors=[],
        families=[],
        values=[],
        efficiency=[],
        case_for=[finding(FOR, i) for i in range(case_for)],
        case_against=[finding(AGAINST, i) for i in range(case_against)],
        people={},
        people_with_data=6,
        min_group_size=5,
        **extra,
    )
