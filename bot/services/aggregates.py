"""When a member may see a team's aggregate: the rules that keep one person's figures out of it.

A member (not an admin, not a manager whose grant reaches the whole team) sees a team's totals
only when none of these attacks would work for the period asked (docs/privacy.md, "Aggregates"):

- **Padding.** The minimum group counts *active* people: members with usage of their own in the
  period (tokens, requests or non-seat dollars; a seat alone is a known list price, not usage).
  The caller's own share is subtracted first: the *other* active people must be at least the
  minimum, or the total minus what the caller knows of themself would be a colleague's figure.
- **Differencing.** Two teams whose active sets differ by fewer than the minimum (but not zero)
  would give, subtracted, the spend of that handful of people. A team's answer is withheld
  while any other team Tokenwise knows in the workspace (every user group and channel it has
  read, whoever asked) has such an active set for the same period. The check is symmetric, so
  the order in which an attacker asks does not matter, and a refused team stays known.
- **Org totals.** The org total is for admins: a team whose active people leave fewer than the
  minimum outside it is withheld, since its total is the org's all but a handful of people.

Every set is computed from the rollups in two grouped queries, whatever the number of teams.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, fields, replace
from typing import TypeVar

from sqlalchemy import Connection, or_, select

from bot.db.models import TeamMembership, UsagePersonDaily
from bot.domain.periods import Period
from bot.domain.records import SEAT
from bot.services.reports import TeamReport, VendorSpend

#: The line that vendors used by too few people fold into, in a member's view.
OTHER_VENDORS = "other vendors"
ALLOWED = "ok"
TOO_FEW_ACTIVE = "too_few_active"
NEAR_ORG = "near_org"
OVERLAPS_TEAM = "overlaps_team"


@dataclass(frozen=True)
class AggregateCheck:
    reason: str
    #: Active people of the team in the period, the caller included.
    active_people: int

    @property
    def allowed(self) -> bool:
        return self.reason == ALLOWED


def _used(table=UsagePersonDaily):
    """A rollup row that shows the person's own use (not a seat's fixed price)."""
    return (
        table.kind != SEAT,
        or_(
            table.cost_micros > 0,
            table.input_tokens > 0,
            table.output_tokens > 0,
            table.requests > 0,
        ),
    )


def _period(table, period: Period):
    return (table.day >= period.start, table.day < period.end)


def org_active_people(conn: Connection, *, workspace_id: str, period: Period) -> frozenset[int]:
    table = UsagePersonDaily
    rows = conn.execute(
        select(table.person_id)
        .where(table.workspace_id == workspace_id, *_period(table, period), *_used(table))
        .distinct()
    )
    return frozenset(int(pid) for (pid,) in rows)


def active_people_by_team(
    conn: Connection, *, workspace_id: str, period: Period
) -> dict[int, frozenset[int]]:
    """Each known team's active people: usage on a day their membership stretch covers, the same
    rule as the team report (``reports.on_team``)."""
    table, member = UsagePersonDaily, TeamMembership
    rows = conn.execute(
        select(member.team_id, table.person_id)
        .join(
            member,
            (member.workspace_id == table.workspace_id)
            & (member.person_id == table.person_id)
            & (member.joined_on <= table.day)
            & or_(member.left_on.is_(None), member.left_on > table.day),
        )
        .where(table.workspace_id == workspace_id, *_period(table, period), *_used(table))
        .distinct()
    )
    teams: dict[int, set[int]] = {}
    for team_id, person_id in rows:
        teams.setdefault(int(team_id), set()).add(int(person_id))
    return {team_id: frozenset(people) for team_id, people in teams.items()}


def judge(
    team_active: frozenset[int],
    *,
    caller_person_id: int | None,
    org_active: frozenset[int],
    other_teams: list[frozenset[int]],
    min_group_size: int,
) -> str:
    """The rule itself, pure: which reason (if any) withholds a member's view of the team."""
    others = team_active - {caller_person_id} if caller_person_id is not None else team_active
    if len(others) < min_group_size:
        return TOO_FEW_ACTIVE
    if len(org_active - team_active) < min_group_size:
        return NEAR_ORG
    for other in other_teams:
        if 0 < len(team_active ^ other) < min_group_size:
            return OVERLAPS_TEAM
    return ALLOWED


def check_member_view(
    conn: Connection,
    *,
    workspace_id: str,
    team_id: int,
    period: Period,
    caller_person_id: int | None,
    min_group_size: int,
) -> AggregateCheck:
    by_team = active_people_by_team(conn, workspace_id=workspace_id, period=period)
    team_active = by_team.pop(team_id, frozenset())
    reason = judge(
        team_active,
        caller_person_id=caller_person_id,
        org_active=org_active_people(conn, workspace_id=workspace_id, period=period),
        other_teams=list(by_team.values()),
        min_group_size=min_group_size,
    )
    return AggregateCheck(reason, len(team_active))


Line = TypeVar("Line")


def split_small_lines(
    lines: list[Line],
    people_of: Callable[[Line], Collection[int]],
    *,
    caller_person_id: int | None,
    min_group_size: int,
) -> tuple[list[Line], list[Line]] | None:
    """(lines shown, lines to fold) for a member: a line from fewer than the minimum people besides
    the caller is folded. None when the folded lines together still come from too few people: their
    sum (the total minus the lines shown) would name them, so no breakdown is shown at all."""

    def others(people: Collection[int]) -> set[int]:
        return set(people) - {caller_person_id}

    shown = [line for line in lines if len(others(people_of(line))) >= min_group_size]
    folded = [line for line in lines if len(others(people_of(line))) < min_group_size]
    behind_folded = set().union(*(others(people_of(line)) for line in folded)) if folded else set()
    if folded and len(behind_folded) < min_group_size:
        return None
    return shown, folded


def _merged(label: str, lines: list[VendorSpend]) -> VendorSpend:
    merged = VendorSpend(label)
    for item in fields(VendorSpend):
        if item.name != "vendor":
            setattr(merged, item.name, sum(getattr(line, item.name) for line in lines))
    return merged


def fold_for_member(report: TeamReport, *, caller_person_id: int | None, min_group_size: int) -> TeamReport:
    """A member's view of a team report whose totals passed ``judge``: vendor lines and models that
    come from fewer than the minimum people besides the caller fold into "other vendors" (or, when
    even those are too few, into one line); such models are not listed."""
    rules = {"caller_person_id": caller_person_id, "min_group_size": min_group_size}
    vendors = split_small_lines(report.vendors, lambda v: report.vendor_people.get(v.vendor, ()), **rules)
    if vendors is None:
        folded_vendors = [_merged("all vendors", report.vendors)] if report.vendors else []
    else:
        shown, folded = vendors
        folded_vendors = shown + ([_merged(OTHER_VENDORS, folded)] if folded else [])
    everyone_models = [(vendor, model) for vendor, model in report.model_people]
    models = split_small_lines(everyone_models, lambda key: report.model_people[key], **rules)
    listed = set(models[0]) if models is not None else set()
    return replace(
        report,
        vendors=folded_vendors,
        models=[(vendor, model, cost) for vendor, model, cost in report.models if (vendor, model) in listed],
        member_spend=[],
    )
