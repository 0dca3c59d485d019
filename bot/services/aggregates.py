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

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, fields, replace
from typing import TypeVar

from sqlalchemy import Connection, literal_column, or_, select, union_all

from bot.db.models import Person, TeamMembership, UsagePersonDaily
from bot.domain.periods import Period
from bot.services.reports import TeamReport, VendorSpend
from bot.services.reports.spend import used_rows

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


def _period(table, period: Period):
    return (table.day >= period.start, table.day < period.end)


def org_active_people(
    conn: Connection, *, workspace_id: str, period: Period, at_most: int | None = None
) -> frozenset[int]:
    """The workspace's active people in the period (``at_most`` of them, when that is enough to
    decide a rule: the query stops there)."""
    table = UsagePersonDaily
    # Per person, one seek into the rollup's (person, day) order that stops at the first used row;
    # a DISTINCT over every row of the period would read them all, and each from the table.
    used_in_period = (
        select(table.person_id)
        .where(
            table.workspace_id == Person.workspace_id,
            table.person_id == Person.id,
            *_period(table, period),
            *used_rows(table),
        )
        .exists()
    )
    query = select(Person.id).where(Person.workspace_id == workspace_id, used_in_period)
    rows = conn.execute(query.limit(at_most) if at_most is not None else query)
    return frozenset(int(pid) for (pid,) in rows)


def _member_in_period(period: Period):
    member = TeamMembership
    return (member.joined_on < period.end, or_(member.left_on.is_(None), member.left_on > period.start))


def _active_members(workspace_id: str, period: Period, team_ids: Collection[int] | None):
    """(team, person) of each membership stretch overlapping ``period`` with usage on a day it
    covers, the same rule as the team report (``reports.on_team``)."""
    table, member = UsagePersonDaily, TeamMembership
    # One index seek per membership stretch that overlaps the period (the rollup's key starts with
    # person and day), rather than a join of every active row of the month with every membership.
    used_while_member = (
        select(table.person_id)
        .where(
            table.workspace_id == member.workspace_id,
            table.person_id == member.person_id,
            *_period(table, period),
            table.day >= member.joined_on,
            or_(member.left_on.is_(None), table.day < member.left_on),
            *used_rows(table),
        )
        .exists()
    )
    return select(member.team_id, member.person_id).where(
        member.workspace_id == workspace_id,
        *_member_in_period(period),
        *([member.team_id.in_(sorted(team_ids))] if team_ids is not None else []),
        used_while_member,
    )


def active_people_by_team(
    conn: Connection, *, workspace_id: str, period: Period, team_ids: Collection[int] | None = None
) -> dict[int, frozenset[int]]:
    """Each known team's (or each of ``team_ids``') active people: usage on a day their membership
    stretch covers, the same rule as the team report (``reports.on_team``)."""
    teams: dict[int, set[int]] = {}
    for team_id, person_id in conn.execute(_active_members(workspace_id, period, team_ids).distinct()):
        teams.setdefault(int(team_id), set()).add(int(person_id))
    return {team_id: frozenset(people) for team_id, people in teams.items()}


def _team_active_by_period(
    conn: Connection, workspace_id: str, team_id: int, periods: Sequence[Period]
) -> list[frozenset[int]]:
    """One team's active people in each of ``periods``, in one statement."""
    found: list[set[int]] = [set() for _ in periods]
    parts = [
        _active_members(workspace_id, period, [team_id]).add_columns(literal_column(str(i))).distinct()
        for i, period in enumerate(periods)
    ]
    for _team, person_id, i in conn.execute(union_all(*parts)):
        found[int(i)].add(int(person_id))
    return [frozenset(people) for people in found]


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


def _other_members(conn: Connection, workspace_id: str, team_id: int, periods: Sequence[Period]):
    """The other teams' membership stretches overlapping any of ``periods``, read once:
    (team, person, joined on, left on)."""
    member = TeamMembership
    span = Period(min(p.start for p in periods), max(p.end for p in periods), "span")
    return conn.execute(
        select(member.team_id, member.person_id, member.joined_on, member.left_on).where(
            member.workspace_id == workspace_id, member.team_id != team_id, *_member_in_period(span)
        )
    ).all()


def _could_difference(
    stretches, team_active: frozenset[int], period: Period, min_group_size: int
) -> list[int]:
    """The other teams whose active set could differ from ``team_active`` by fewer than the
    minimum in ``period``. Another team's active people are among its members in the period, so
    ``team_active`` minus those members is part of the symmetric difference: when that alone
    reaches the minimum the team cannot be used for differencing, whatever its usage, and its
    active set is not read. One pass over the memberships (``_other_members``) instead of a usage
    seek per membership of every team."""
    members: dict[int, set[int]] = {}
    for other, person_id, joined_on, left_on in stretches:
        if joined_on < period.end and (left_on is None or left_on > period.start):
            members.setdefault(int(other), set()).add(int(person_id))
    return [other for other, people in members.items() if len(team_active - people) < min_group_size]


def check_member_view(
    conn: Connection,
    *,
    workspace_id: str,
    team_id: int,
    period: Period,
    caller_person_id: int | None,
    min_group_size: int,
) -> AggregateCheck:
    team_active = active_people_by_team(
        conn, workspace_id=workspace_id, period=period, team_ids=[team_id]
    ).get(team_id, frozenset())
    reason = judge(
        team_active,
        caller_person_id=caller_person_id,
        # Enough of the org to decide: |team| + minimum active people leave at least the minimum
        # outside the team, whichever they are.
        org_active=org_active_people(
            conn, workspace_id=workspace_id, period=period, at_most=len(team_active) + min_group_size
        ),
        other_teams=_other_active_sets(conn, workspace_id, team_id, team_active, period, min_group_size),
        min_group_size=min_group_size,
    )
    return AggregateCheck(reason, len(team_active))


def _other_active_sets(
    conn: Connection,
    workspace_id: str,
    team_id: int,
    team_active: frozenset[int],
    period: Period,
    min_group_size: int,
    stretches=None,
) -> list[frozenset[int]]:
    """The active sets of the other teams that could be used to difference ``team_active``."""
    if stretches is None:
        stretches = _other_members(conn, workspace_id, team_id, [period])
    candidates = _could_difference(stretches, team_active, period, min_group_size)
    if not candidates:
        return []
    return list(
        active_people_by_team(conn, workspace_id=workspace_id, period=period, team_ids=candidates).values()
    )


def overlaps_another_team(
    conn: Connection, *, workspace_id: str, team_id: int, period: Period, min_group_size: int
) -> bool:
    """Whether another known team's active set differs from this team's by at least one and fewer
    than the minimum in ``period``: rule 2 ("Differencing") for a figure posted in a channel, where
    no caller is taken out (the weekly recap: a member of two teams' channels would subtract)."""
    return (
        first_overlapping_period(
            conn, workspace_id=workspace_id, team_id=team_id, periods=[period], min_group_size=min_group_size
        )
        is not None
    )


def first_overlapping_period(
    conn: Connection, *, workspace_id: str, team_id: int, periods: Sequence[Period], min_group_size: int
) -> int | None:
    """The first of ``periods`` (its index) in which ``overlaps_another_team`` holds, None if
    none: the team's active sets of every period in one statement and the other teams'
    memberships read once, instead of two queries per period (the recap's eight weeks)."""
    if not periods:
        return None
    stretches = _other_members(conn, workspace_id, team_id, periods)
    for i, team_active in enumerate(_team_active_by_period(conn, workspace_id, team_id, periods)):
        others = _other_active_sets(
            conn, workspace_id, team_id, team_active, periods[i], min_group_size, stretches
        )
        if any(0 < len(team_active ^ other) < min_group_size for other in others):
            return i
    return None


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
