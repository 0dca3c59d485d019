"""Loading a team's weekly recap: the SQL, and the privacy cut of weeks and people behind it.

``load_recap`` reads the last eight weeks in two grouped queries (usage and activity, bucketed
into weeks in SQL), leaves out weeks whose figures come from too few people, and hands the rows
to ``bot.services.recap.lines``; budgets, idle seats and spend not followed by a merge come from
their own queries. The rules (``bot.services.recap.rules``) then split the findings into what a
channel may see and what only the managers' DM gets; ``record_detail_views`` audits that DM.

Weeks: a recap of the week ending on local date D covers the seven days ``[D - 7, D)``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Connection, and_, case, func, literal_column, null, or_, select, union_all

from bot.db.models import (
    ActivityDaily,
    Identity,
    Person,
    PullRequest,
    UsageDaily,
    UsageOrgDaily,
    UsagePersonDaily,
)
from bot.domain.ai_rules import DELIVERY_VENDORS
from bot.domain.models import model_family
from bot.domain.periods import Period
from bot.domain.records import ACTIVITY_FIELDS, SEAT
from bot.services import aggregates, privacy, reports, teams
from bot.services.recap import value_rules
from bot.services.recap.incident_rules import cited as cited_incidents
from bot.services.recap.lines import WeekRows, aggregate, efficiency, fold_spend, fold_values
from bot.services.recap.model import SHOWN_WEEKS, WEEKS, Recap
from bot.services.recap.money_rules import load_money_findings
from bot.services.recap.rules import (
    FOR,
    VALUE_SIGNALS,
    BudgetStatus,
    IdleSeat,
    IdleWeek,
    RecapFacts,
    WeekTotal,
    evaluate,
    split_postable,
)
from bot.services.recap.saved_rules import cited as cited_saved
from bot.services.recap.scope import Scope, scope_people
from bot.services.value.merged_prs import Whose, midnight
from bot.settings import Settings


def week_starts(end: date) -> list[date]:
    """Start of each recap week, newest first: ``[end - 7, end)`` is this week."""
    return [end - timedelta(days=7 * (i + 1)) for i in range(WEEKS)]


def _week_index(table, starts: Sequence[date]):
    # Weeks are bucketed in SQL so a 500-person team returns a few thousand rows, not one per day.
    return case(*[(table.day >= s, i) for i, s in enumerate(starts[:-1])], else_=len(starts) - 1).label("wk")


def _grouped(query, *columns):
    # GROUP BY the "wk" alias: PostgreSQL sees the CASE in SELECT and in GROUP BY as different
    # expressions (their date parameters are bound separately), the alias is one.
    return query.group_by(literal_column("wk"), *columns)


def load_configured(
    conn: Connection,
    settings: Settings,
    *,
    workspace_id: str,
    scope: Scope,
    end: date,
    today: date | None = None,
    idle_seat_actors: Collection[str] | None = None,
) -> Recap:
    """``load_recap`` with the recap's rules tuned by the settings (the minimum group, idle and
    fix days, the adoption threshold): what the job, the preview and the CLI all post."""
    return load_recap(
        conn,
        workspace_id=workspace_id,
        scope=scope,
        end=end,
        min_group_size=settings.min_group_size,
        idle_days=settings.github_delivery_idle_days,
        today=today,
        idle_seat_actors=idle_seat_actors,
        adoption_threshold_usd=settings.adoption_threshold_usd,
        fix_days=settings.github_delivery_fix_days,
    )


def load_recap(
    conn: Connection,
    *,
    workspace_id: str,
    scope: Scope,
    end: date,
    min_group_size: int,
    idle_days: int = 14,
    today: date | None = None,
    idle_seat_actors: Collection[str] | None = None,
    adoption_threshold_usd: Decimal | None = None,
    fix_days: int = 14,
) -> Recap:
    """The recap of ``scope`` for the week ``[end - 7, end)``: lines, facts and findings."""
    starts = week_starts(end)
    this_start = starts[0]
    found = WeekRows(
        *_usage_rows(conn, workspace_id, scope, starts, end),
        *_activity_rows(conn, workspace_id, scope, starts, end),
    )
    small_weeks = _small_weeks(found, min_group_size)
    overlapping = _overlapping_week(conn, workspace_id, scope, starts, min_group_size, before=small_weeks)
    if overlapping is not None:
        small_weeks.add(overlapping)
    hidden_from = min((wk for wk in small_weeks if wk > 0), default=WEEKS)
    found = found.before(hidden_from)
    person_ids = found.people(WEEKS)
    people = _people(conn, person_ids)
    facts = RecapFacts(weeks=[WeekTotal(start) for start in starts], idle_days=idle_days)
    if scope.team_id is not None:
        facts.members = teams.member_count(conn, team_id=scope.team_id)
    else:
        facts.members = len(scope.person_ids or ())
    lines = aggregate(facts, found)
    facts.budgets = _budgets(
        conn, workspace_id=workspace_id, scope=scope, today=today or end - timedelta(days=1)
    )
    facts.idle_seats = _idle_seats(
        conn, workspace_id=workspace_id, scope=scope, start=this_start, end=end, idle_actors=idle_seat_actors
    )
    facts.idle_weeks = _idle_weeks(
        conn, workspace_id=workspace_id, scope=scope, end=end, idle_days=idle_days, today=today or end
    )
    vendors, families, values = lines
    shown = found.people(SHOWN_WEEKS)
    case_for, case_against = evaluate(facts)
    for cite in (cited_incidents, cited_saved):  # findings fed by other features' records
        for found in cite(
            conn, workspace_id=workspace_id, scope=scope, facts=facts, start=this_start, end=end
        ):
            (case_for if found.side == FOR else case_against).append(found)
    # The code host's value rules (survival, review load): bot/services/recap/value_rules.py.
    whose = Whose(workspace_id, scope.person_ids, scope.team_id)
    value = value_rules.load_value(conn, whose, end=end, fix_days=fix_days, now=midnight(today or end))
    value_for, value_against = value_rules.evaluate(value)
    case_for, case_against = [*case_for, *value_for], [*case_against, *value_against]
    case_for, withheld_for = split_postable(case_for, min_group_size)
    case_against, withheld_against = split_postable(case_against, min_group_size)
    # Money lines from too few people are dropped, not sent to the managers: they name no one, so
    # the managers' DM could not leave out a figure made partly of people their grant misses.
    money, _ = split_postable(
        load_money_findings(conn, workspace_id, scope, end, adoption_threshold_usd), min_group_size
    )
    return Recap(
        scope_name=scope.name,
        scope_team=scope.team,
        period=Period(this_start, end, f"week of {this_start:%b %-d}"),
        facts=facts,
        vendors=fold_spend(vendors, min_group_size),
        families=fold_spend(families, min_group_size),
        values=fold_values(values, min_group_size),
        efficiency=efficiency(facts),
        case_for=case_for,
        case_against=case_against,
        people=people,
        people_with_data=len(shown),
        min_group_size=min_group_size,
        withheld=[*withheld_for, *withheld_against],
        this_week_small=0 in small_weeks,
        overlaps_team=overlapping == 0,
        hidden_before=starts[hidden_from - 1] if hidden_from < WEEKS else None,
        managers=teams.team_managers(conn, workspace_id=workspace_id, team_id=scope.team_id)
        if scope.team_id is not None
        else [],
        money=money,
    )


def _people(conn: Connection, person_ids: Iterable[int]) -> dict[int, Person]:
    ids = sorted(person_ids)
    found: dict[int, Person] = {}
    for start in range(0, len(ids), 500):
        for row in conn.execute(select(Person).where(Person.id.in_(ids[start : start + 500]))).all():
            found[row.id] = Person.model_validate(row._mapping)
    return found


def _small_weeks(found: WeekRows, min_size: int) -> set[int]:
    """Weeks (indexes) whose spend or value come from more than 0 but fewer than ``min_size``
    people with usage: their figures would be one or two people's own numbers. (Seats are list
    prices: a seat says someone holds one, not what they did.)"""
    spenders: dict[int, set[int]] = {}
    valued: dict[int, set[int]] = {}
    for wk, pid, _cost, spent, _has_usage in found.usage_people:
        if spent:
            spenders.setdefault(wk, set()).add(int(pid))
    for wk, pid, signal, *_ in found.activity_people:
        if signal:
            valued.setdefault(wk, set()).add(int(pid))
    return {wk for group in (spenders, valued) for wk, people in group.items() if 0 < len(people) < min_size}


def _window(table, workspace_id: str, scope: Scope, first: date, end: date):
    """The scope's rows of ``table`` in ``[first, end)``."""
    return (
        table.workspace_id == workspace_id,
        scope.clause(table, within=(first, end)),
        table.day >= first,
        table.day < end,
    )


def _parts(conn: Connection, *parts, count: int) -> list[list]:
    """Run the UNION ALL of ``parts`` (each led by its index) and split the rows by part."""
    split: list[list] = [[] for _ in range(count)]
    for part, *row in conn.execute(union_all(*parts)).all():
        split[int(part)].append(row)
    return split


def _usage_rows(
    conn: Connection, workspace_id: str, scope: Scope, starts: Sequence[date], end: date
) -> list[list]:
    """``WeekRows``' usage parts in one statement: the scope's (week, person, vendor, model, basis,
    kind) groups are summed once (a CTE) and read four ways from there."""
    table, first = UsagePersonDaily, starts[-1]
    # Model families are a Python rule: the window's models (from the org rollup, a superset of
    # the scope's) are mapped here so SQL can count each family's people.
    models = conn.execute(
        select(UsageOrgDaily.model)
        .where(
            UsageOrgDaily.workspace_id == workspace_id, UsageOrgDaily.day >= first, UsageOrgDaily.day < end
        )
        .distinct()
    ).scalars()
    families = {model: model_family(model) for model in models}
    family = case(families, value=table.model, else_=table.model) if families else table.model
    groups = _grouped(
        select(
            _week_index(table, starts),
            table.person_id,
            table.vendor,
            table.model,
            table.cost_basis,
            table.kind,
            family.label("family"),
            func.sum(table.cost_micros).label("cost"),
            # Tokens another source also reports (TOKENS_ONLY rows) count once: theirs.
            func.sum(
                case(
                    (table.tokens_only.is_(True), 0),
                    else_=table.input_tokens
                    + table.output_tokens
                    + table.cache_read_tokens
                    + table.cache_write_tokens,
                )
            ).label("tokens"),
            func.sum(table.requests).label("requests"),
        ).where(*_window(table, workspace_id, scope, first, end)),
        table.person_id,
        table.vendor,
        table.model,
        table.cost_basis,
        table.kind,
    ).cte("usage_groups")
    g, nothing = groups.c, null()
    usage_of_own = g.kind != SEAT
    shown = g.wk < SHOWN_WEEKS
    # Every part has the same columns: (part, wk, label, person, model, basis, kind, three sums).
    lines, people, vendor_people, family_people = _parts(
        conn,
        select(
            literal_column("0"),
            g.wk,
            g.vendor,
            nothing,
            g.model,
            g.cost_basis,
            g.kind,
            func.sum(g.cost),
            func.sum(g.tokens),
            nothing,
        ).group_by(g.wk, g.vendor, g.model, g.cost_basis, g.kind),
        select(
            literal_column("1"),
            g.wk,
            nothing,
            g.person_id,
            nothing,
            nothing,
            nothing,
            func.sum(case((usage_of_own, g.cost), else_=0)),
            func.max(
                case((and_(usage_of_own, or_(g.cost != 0, g.tokens != 0, g.requests != 0)), 1), else_=0)
            ),
            func.max(case((usage_of_own, 1), else_=0)),
        ).group_by(g.wk, g.person_id),
        _people_per_line("2", g.wk, g.vendor, g.person_id).where(shown).group_by(g.wk, g.vendor),
        _people_per_line("3", g.wk, g.family, g.person_id)
        .where(shown, usage_of_own)
        .group_by(g.wk, g.family),
        count=4,
    )
    known = set(families.values())
    return [
        [
            (wk, vendor, model, basis, kind, cost, tokens)
            for wk, vendor, _, model, basis, kind, cost, tokens, _ in lines
        ],
        [(wk, pid, cost, spent, has_usage) for wk, _, pid, *_, cost, spent, has_usage in people],
        [(wk, vendor, n) for wk, vendor, *_, n, _, _ in vendor_people],
        [(wk, f if f in known else model_family(f), n) for wk, f, *_, n, _, _ in family_people],
    ]


def _people_per_line(part: str, wk, label, person):
    nothing = null()
    return select(
        literal_column(part),
        wk,
        label,
        nothing,
        nothing,
        nothing,
        nothing,
        func.count(person.distinct()),
        nothing,
        nothing,
    )


def _activity_rows(
    conn: Connection, workspace_id: str, scope: Scope, starts: Sequence[date], end: date
) -> list[list]:
    """``WeekRows``' activity parts in one statement, from the scope's (week, person, vendor)
    groups summed once."""
    table, first = ActivityDaily, starts[-1]
    sums = [func.sum(getattr(table, name)) for name in ACTIVITY_FIELDS]
    groups = _grouped(
        select(
            _week_index(table, starts),
            table.person_id,
            table.vendor,
            *(total.label(name) for total, name in zip(sums, ACTIVITY_FIELDS, strict=True)),
            case((or_(*(total != 0 for total in sums)), 1), else_=0).label("signal"),
        ).where(*_window(table, workspace_id, scope, first, end)),
        table.person_id,
        table.vendor,
    ).cte("activity_groups")
    g, nothing = groups.c, null()
    width = len(ACTIVITY_FIELDS) + 1  # the sums and the signal

    def padded(*values):
        return [*values, *[nothing] * (width - len(values))]

    signal = g.signal == 1
    signals = [getattr(g, name) for name in VALUE_SIGNALS]
    # Every part has the same columns: (part, wk, person, vendor, the fields' sums, signal).
    lines, people, value_people = _parts(
        conn,
        select(
            literal_column("0"),
            g.wk,
            nothing,
            g.vendor,
            *(func.sum(getattr(g, name)) for name in ACTIVITY_FIELDS),
            func.max(g.signal),
        ).group_by(g.wk, g.vendor),
        select(
            literal_column("1"),
            g.wk,
            g.person_id,
            nothing,
            *padded(
                func.max(g.signal),
                func.max(case((and_(signal, g.vendor.not_in(sorted(DELIVERY_VENDORS))), 1), else_=0)),
                func.sum(case((signal, sum(signals[1:], signals[0])), else_=0)),
            ),
        ).group_by(g.wk, g.person_id),
        select(literal_column("2"), g.wk, nothing, g.vendor, *padded(func.count(g.person_id.distinct())))
        .where(signal, g.wk < SHOWN_WEEKS)
        .group_by(g.wk, g.vendor),
        count=3,
    )
    return [
        [(wk, vendor, *rest) for wk, _, vendor, *rest in lines],
        [(wk, pid, *rest[:3]) for wk, pid, _, *rest in people],
        [(wk, vendor, n) for wk, _, vendor, n, *_ in value_people],
    ]


def _overlapping_week(
    conn: Connection,
    workspace_id: str,
    scope: Scope,
    starts: Sequence[date],
    min_group_size: int,
    *,
    before: set[int],
) -> int | None:
    """The newest week (index) in which another known team's active people differ from the
    team's by fewer than the minimum: the two channels' recaps, subtracted, would give that
    handful's spend (docs/privacy.md, "Recap posts"). Weeks from the first small one on are
    left out anyway and are not read. None for a list of people (made by an admin) or no overlap."""
    if scope.team_id is None:
        return None
    # Weeks from the first small one on are not read (in one statement for all the others).
    weeks = []
    for wk, start in enumerate(starts):
        if wk in before:
            break
        weeks.append(Period(start, start + timedelta(days=7), "week"))
    return aggregates.first_overlapping_period(
        conn, workspace_id=workspace_id, team_id=scope.team_id, periods=weeks, min_group_size=min_group_size
    )


def _budgets(conn: Connection, *, workspace_id: str, scope: Scope, today: date) -> list[BudgetStatus]:
    """The team's own budgets (aimed at its group or channel) as ``bot.services.budgets`` sees
    them today: spend so far in the current period against the ceiling, extras included."""
    if scope.budget_target is None or scope.team_id is None:
        return []
    from bot.services import budgets

    kind, target = scope.budget_target
    rows = budgets.budgets_of_target(conn, workspace_id=workspace_id, kind=kind, target_id=target)
    if not rows:
        return []
    team = teams.team_by_id(conn, scope.team_id)
    found = []
    for status in budgets.statuses(
        conn, workspace_id=workspace_id, budgets=[(b, team) for b in rows], today=today
    ):
        budget = status.budget
        label = f"{budget.period}ly budget" + (f" ({budget.vendor})" if budget.vendor else "")
        within = (status.period.start, status.period.end)
        spenders = frozenset(
            conn.execute(
                select(UsagePersonDaily.person_id)
                .where(
                    UsagePersonDaily.workspace_id == workspace_id,
                    scope.clause(UsagePersonDaily, within=within),
                    UsagePersonDaily.kind != SEAT,
                    UsagePersonDaily.cost_micros != 0,
                    UsagePersonDaily.day >= within[0],
                    UsagePersonDaily.day < within[1],
                    *([UsagePersonDaily.vendor == budget.vendor] if budget.vendor else []),
                )
                .distinct()
            ).scalars()
        )
        found.append(
            BudgetStatus(label, status.period.label, status.spent_micros, status.ceiling_micros, spenders)
        )
    return found


def _idle_seats(
    conn: Connection,
    *,
    workspace_id: str,
    scope: Scope,
    start: date,
    end: date,
    idle_actors: Collection[str] | None,
) -> list[IdleSeat]:
    """Seats paid this week whose holder has shown no activity with that vendor for 30 days.

    From the stored rows: no activity row and no usage (other than the seat) of the vendor.
    ``idle_actors`` (e.g. GitHub's own ``last_activity_at`` through
    ``GitHubCopilotConnector.idle_seats``) decides for the vendors whose actors it names."""
    seats = conn.execute(
        select(UsagePersonDaily.person_id, UsagePersonDaily.vendor, func.sum(UsagePersonDaily.cost_micros))
        .where(
            UsagePersonDaily.workspace_id == workspace_id,
            scope.clause(UsagePersonDaily, within=(start, end)),
            UsagePersonDaily.kind == SEAT,
            UsagePersonDaily.day >= start,
            UsagePersonDaily.day < end,
        )
        .group_by(UsagePersonDaily.person_id, UsagePersonDaily.vendor)
    ).all()
    if not seats:
        return []
    holders = sorted({int(pid) for pid, _, _ in seats})
    since = end - timedelta(days=30)
    used: set[tuple[int, str]] = set()
    for pid, vendor in conn.execute(
        select(ActivityDaily.person_id, ActivityDaily.vendor)
        .where(
            ActivityDaily.workspace_id == workspace_id,
            ActivityDaily.person_id.in_(holders),
            ActivityDaily.day >= since,
            ActivityDaily.day < end,
            or_(*(getattr(ActivityDaily, name) > 0 for name in ACTIVITY_FIELDS)),
        )
        .distinct()
    ).all():
        used.add((int(pid), vendor))
    for pid, vendor in conn.execute(
        select(UsageDaily.person_id, UsageDaily.vendor)
        .where(
            UsageDaily.workspace_id == workspace_id,
            UsageDaily.person_id.in_(holders),
            UsageDaily.kind != SEAT,
            UsageDaily.day >= since,
            UsageDaily.day < end,
            or_(UsageDaily.cost_micros > 0, UsageDaily.requests > 0, UsageDaily.input_tokens > 0),
        )
        .distinct()
    ).all():
        used.add((int(pid), vendor))
    told: dict[int, set[str]] = {}  # person -> vendor namespaces named idle by the vendor itself
    if idle_actors is not None:
        for actor, pid in conn.execute(
            select(Identity.actor, Identity.person_id).where(
                Identity.workspace_id == workspace_id, Identity.person_id.in_(holders)
            )
        ).all():
            if actor in idle_actors:
                told.setdefault(int(pid), set()).add(actor.split(":", 1)[0])
    found = []
    for pid, vendor, cost in seats:
        pid = int(pid)
        if idle_actors is not None and vendor == "github_copilot":
            idle = "github" in told.get(pid, set())
        else:
            idle = (pid, vendor) not in used
        if idle:
            found.append(IdleSeat(pid, vendor, int(cost or 0)))
    return sorted(found, key=lambda s: (-s.seat_micros, s.person_id or 0, s.vendor))


def _idle_weeks(
    conn: Connection, *, workspace_id: str, scope: Scope, end: date, idle_days: int, today: date
) -> list[IdleWeek]:
    """Weeks of spend that ``reports.delivery_measures`` judged idle (no merged PR of the person
    within ``idle_days``), only those whose deadline passed this week, so each is told once.
    Only when merged PRs are synced at all: without a code host every week would look idle."""
    has_delivery = conn.execute(
        select(PullRequest.id).where(PullRequest.workspace_id == workspace_id).limit(1)
    ).first()
    if has_delivery is None:
        return []
    start = end - timedelta(days=21 + idle_days)
    person_ids = scope_people(conn, scope, start, end)
    if not person_ids:
        return []
    measures = reports.delivery_measures(
        conn, workspace_id, person_ids, Period(start, end, "recap"), idle_days, today=today
    )
    this_start = end - timedelta(days=7)
    return [
        IdleWeek(w.person_id, w.week_start, w.spend_micros)
        for w in measures.idle_weeks
        if w.week_start + timedelta(days=7 + idle_days) > this_start
    ]


def record_detail_views(
    conn: Connection,
    *,
    workspace_id: str,
    manager_ids: Sequence[str],
    person_ids: Sequence[int],
    period: Period,
) -> None:
    """The managers' DM shows people's own numbers: each person can see it in ``audit me``."""
    privacy.record_views_by(
        conn,
        workspace_id=workspace_id,
        actor_user_ids=manager_ids,
        action="view.recap_detail",
        person_ids=sorted(set(person_ids)),
        detail=f"recap week {period.start}..{period.last_day}",
    )
