"""Every reply builder stays within Slack's Block Kit limits however many rows it is given and
however long the names in them: property tests (hypothesis) build each message type from many
vendors, models, teams, budgets, sources and audit entries with long, mrkdwn-hostile names, and
check each block with slack_sdk's own validators plus the limits the SDK does not check.

Limits (/work/shared/reference/slack-platform.md §2, docs.slack.dev): 50 blocks per message,
100 per Home tab; section text 3000; 10 fields of 2000; header 150; 10 context elements;
25 actions; button text 75, value 2000; option text 75, value 150; block_id / action_id 255.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block as SdkBlock

from bot.db.models import Budget, Team
from bot.domain.periods import calendar_period
from bot.services.budgets import BudgetStatus
from bot.services.home import Dashboard, TeamSummary
from bot.services.me import TeamMedian
from bot.services.no_usage import NO_EMAIL, NO_MATCH, NONE_IN_PERIOD, ConnectedSource, NoUsage
from bot.services.people import UnlinkedActor
from bot.services.privacy import AuditEntry, AuditPage
from bot.services.reports import SpendReport, Value, ValueRatios, VendorSpend
from bot.services.status import SourceStatus, StatusReport
from bot.services.teams import Grant
from bot.slack.blocks import reports as report_blocks
from bot.slack.blocks.budget_requests import build_request_choice
from bot.slack.blocks.budgets import budget_home_blocks, build_budget_show, with_budgets
from bot.slack.blocks.common import MAX_MESSAGE_BLOCKS, MAX_VIEW_BLOCKS, Message, validate
from bot.slack.blocks.home import build_home, build_home_not_linked
from bot.slack.blocks.no_usage import build_no_usage, no_usage_blocks
from bot.slack.blocks.privacy import build_audit
from bot.slack.blocks.teams import build_roles, build_team

TODAY = date(2026, 12, 2)
NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
TZ = ZoneInfo("Europe/Berlin")
USD = 1_000_000

# Names as vendors and Slack may send them: long, with mrkdwn control characters and emoji.
NAMES = st.text(alphabet=st.sampled_from("abcXYZ-_ .&<>*~`é漢🙂"), min_size=1, max_size=300).filter(str.strip)
MICROS = st.integers(min_value=0, max_value=10**15)


def sized(strategy, most: int, *, unique: bool = False):
    """A few rows, or as many as the view is ever given: the property holds for both ends."""
    return st.one_of(
        st.lists(strategy, max_size=3, unique=unique),
        st.lists(strategy, min_size=most, max_size=most, unique=unique),
    )


LIMITS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _walk(node, path="") -> list[str]:
    """Limits below the block level the SDK's block validators do not check."""
    problems = []
    if isinstance(node, list):
        for index, item in enumerate(node):
            problems += _walk(item, f"{path}[{index}]")
        return problems
    if not isinstance(node, dict):
        return problems
    kind = node.get("type")
    for key in ("block_id", "action_id"):
        if key in node and not 1 <= len(node[key]) <= 255:
            problems.append(f"{path}.{key} length {len(node[key])}")
    if kind == "button":
        if not 1 <= len(node["text"]["text"]) <= 75:
            problems.append(f"{path} button text length {len(node['text']['text'])}")
        if len(node.get("value", "")) > 2000:
            problems.append(f"{path} button value length {len(node['value'])}")
    if "options" in node:
        for index, option in enumerate(node["options"]):
            if not 1 <= len(option["text"]["text"]) <= 75 or len(option.get("value", "")) > 150:
                problems.append(f"{path}.options[{index}] text/value too long")
    if kind == "context":
        for index, element in enumerate(node["elements"]):
            text = element.get("text", "")
            if isinstance(text, str) and not 1 <= len(text) <= 3000:
                problems.append(f"{path}.elements[{index}] context text length {len(text)}")
    for key, value in node.items():
        if isinstance(value, (list, dict)):
            problems += _walk(value, f"{path}.{key}")
    return problems


def limit_problems(blocks: list[dict], *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    problems = validate(blocks, max_blocks=max_blocks) + _walk(blocks, "blocks")
    for index, block in enumerate(blocks):
        try:
            SdkBlock.parse(block).validate_json()
        except Exception as error:  # SlackObjectFormationError and friends: name the block
            problems.append(f"block {index} ({block.get('type')}): {error}")
    return problems


def assert_within_limits(reply: Message) -> None:
    assert 1 <= len(reply.text) <= 3000, len(reply.text)  # the notification / screen-reader text
    problems = limit_problems(reply.blocks)
    assert problems == [], problems


def assert_view_within_limits(view: dict) -> None:
    assert view["type"] == "home"
    problems = limit_problems(view["blocks"], max_blocks=MAX_VIEW_BLOCKS)
    assert problems == [], problems


@st.composite
def reports(draw) -> SpendReport:
    vendors = draw(sized(NAMES, 30, unique=True))
    return SpendReport(
        calendar_period("month", TODAY),
        vendors=[
            VendorSpend(
                vendor,
                cost_micros=draw(MICROS),
                estimated_micros=draw(MICROS),
                seat_micros=draw(MICROS),
                unattributed_micros=draw(MICROS),
                input_tokens=draw(MICROS),
                output_tokens=draw(MICROS),
                requests=draw(MICROS),
            )
            for vendor in vendors
        ],
        value=[
            Value(vendor, lines_accepted=draw(MICROS), acceptances=5, rejections=3, commits=9, prs_merged=4)
            for vendor in vendors
        ],
        previous_total_micros=draw(MICROS),
        active_people=draw(st.integers(0, 10_000)),
        models=draw(models()),
    )


def models():
    return sized(st.tuples(NAMES, NAMES, MICROS), 40)


TEAM = st.builds(
    Team,
    id=st.integers(1, 10**6),
    workspace_id=st.just("T1"),
    kind=st.sampled_from(["group", "channel"]),
    slack_id=st.text("ABCDEFGHIJ0123456789", min_size=9, max_size=11),
    name=NAMES,
    refreshed_at=st.none(),
)


def team_refs(max_size: int = 40):
    return sized(TEAM, max_size)


def ratios():
    return st.builds(
        ValueRatios,
        **{
            name: st.one_of(st.none(), MICROS)
            for name in ValueRatios.__dataclass_fields__  # every measure, shown or withheld
            if name != "withheld"
        },
    )


def budget_statuses(max_size: int = 30):
    def status(vendor: str, kind: str, amount: int, spent: int, name: str, visibility: str) -> BudgetStatus:
        budget = Budget(
            id=1,
            workspace_id="W",
            target_kind=kind,
            target_id="7" if kind == "person" else "SGROUP",
            vendor=vendor[:32],
            amount_micros=amount,
            floor_micros=amount // 10,
        )
        team = (
            Team(id=2, workspace_id="T1", kind="group", slack_id="SGROUP", name=name)
            if kind == "group"
            else None
        )
        return BudgetStatus(
            budget,
            team,
            calendar_period("month", TODAY),
            TODAY,
            amount,
            amount // 3,
            spent,
            Fraction(spent, 2),
            visibility,
            "UPERSON",
            name,
            kind == "person",
        )

    return sized(
        st.builds(
            status,
            NAMES,
            st.sampled_from(["person", "group", "org"]),
            st.integers(1, 10**12),
            MICROS,
            NAMES,
            st.sampled_from(["full", "percent", "hidden"]),
        ),
        max_size,
    )


def no_usages():
    return st.builds(
        NoUsage,
        reason=st.sampled_from([NO_EMAIL, NO_MATCH, NONE_IN_PERIOD]),
        email=st.one_of(st.none(), NAMES),
        identities=sized(NAMES, 10),
        sources=sized(st.builds(ConnectedSource, NAMES, st.booleans(), st.just(NOW)), 30),
        last_day=st.one_of(st.none(), st.just(TODAY - timedelta(days=40))),
    )


@LIMITS
@given(
    reports(),
    NAMES,
    sized(st.builds(TeamMedian, TEAM, ratios()), 20),
    no_usages(),
    sized(NAMES, 10),
    budget_statuses(),
    team_refs(),
)
def test_me_with_every_addition_stays_within_limits(
    report, who, medians, explained, delivery, statuses, managed
):
    notice = no_usage_blocks(explained, admins_hint="an admin", tz=TZ, period_label=report.period.label)
    reply = report_blocks.build_me(
        report, who=who, models=report.models, tz=TZ, medians=medians, notice=notice, delivery=delivery
    )
    reply = report_blocks.with_demo_note(with_budgets(reply, statuses), who)
    assert_within_limits(
        report_blocks.with_actions(
            reply, report_blocks.period_buttons("me"), report_blocks.open_team_buttons(managed)
        )
    )


@LIMITS
@given(reports())
def test_org_stays_within_limits(report):
    assert_within_limits(report_blocks.build_org(report, models=report.models))


@LIMITS
@given(
    reports(),
    TEAM,
    st.integers(0, 10**6),
    sized(st.tuples(NAMES, MICROS), 500),
    sized(NAMES, 20),
    st.booleans(),
)
def test_team_stays_within_limits(report, team, members, spend, notes, compare):
    reply = build_team(
        report,
        team=team,
        members=members,
        models=report.models,
        member_spend=spend,
        notes=notes,
        compare_previous=compare,
    )
    assert_within_limits(reply)


@LIMITS
@given(
    sized(
        st.builds(
            SourceStatus,
            NAMES,
            st.booleans(),
            st.just(timedelta(hours=1)),
            st.none(),
            st.just(NOW),
            st.one_of(st.none(), NAMES.map(lambda s: s * 20)),
            st.just(NOW),
            st.integers(0, 99),
            MICROS,
        ),
        40,
    ),
    sized(st.builds(UnlinkedActor, NAMES, NAMES, MICROS), 200),
    st.booleans(),
)
def test_status_stays_within_limits(sources, unlinked, demo):
    assert_within_limits(report_blocks.build_status(StatusReport(sources, unlinked), tz=TZ, demo_mode=demo))


@LIMITS
@given(
    reports(),
    st.lists(st.tuples(st.just(TODAY), MICROS), min_size=8, max_size=8),
    team_refs(15),
    st.integers(0, 500),
    budget_statuses(),
    st.one_of(st.none(), no_usages()),
    st.one_of(st.none(), NAMES),
)
def test_app_home_stays_within_limits(report, weeks, managed, more, statuses, explained, demo_as):
    summaries = [TeamSummary(team, 10**6, report if i % 2 else None, i) for i, team in enumerate(managed)]
    board = Dashboard(
        "who",
        report,
        report.models,
        weeks,
        summaries,
        more,
        budgets=statuses,
        no_usage=explained,
        when="in the last 30 days",
    )
    assert_view_within_limits(build_home(board, tz=TZ, now=NOW, admins_hint="an admin", demo_as=demo_as))
    assert_view_within_limits(build_home_not_linked(admins_hint="an admin", explained=explained, tz=TZ))


@LIMITS
@given(no_usages(), NAMES)
def test_no_usage_stays_within_limits(explained, hint):
    assert_within_limits(build_no_usage(explained, admins_hint=hint, tz=TZ, period_label="December 2026"))


@LIMITS
@given(budget_statuses(60), st.integers(1, 10**12), NAMES)
def test_budget_replies_stay_within_limits(statuses, amount, reason):
    assert_within_limits(build_budget_show(statuses, title="Budgets", empty="None.", note=reason))
    if statuses:
        assert_within_limits(build_request_choice(statuses, amount_micros=amount, reason=reason))
    assert limit_problems(budget_home_blocks(statuses), max_blocks=MAX_VIEW_BLOCKS) == []


@LIMITS
@given(
    sized(
        st.builds(AuditEntry, st.just(NOW), NAMES, NAMES, NAMES, NAMES.map(lambda s: s * 10)),
        25,
    ),
    st.integers(1, 10**4),
)
def test_audit_page_stays_within_limits(entries, pages):
    page = AuditPage(entries, total=len(entries) * pages, page=1, pages=pages)
    reply = build_audit(
        page, title="Who looked at your numbers", labels={}, tz=TZ, empty="Nobody.", command="audit me"
    )
    assert_within_limits(reply)


@LIMITS
@given(
    sized(
        st.builds(
            Grant,
            st.sampled_from(["manager", "viewer"]),
            NAMES,
            TEAM,
            NAMES,
        ),
        60,
    ),
    st.booleans(),
)
def test_roles_stay_within_limits(grants, admin_view):
    assert_within_limits(build_roles(grants, admin_view=admin_view))


@LIMITS
@given(NAMES.map(lambda s: s * 15), st.one_of(st.none(), NAMES))
def test_help_and_errors_stay_within_limits(text, usage):
    assert_within_limits(report_blocks.build_help(is_admin=True))
    assert_within_limits(report_blocks.build_help(is_admin=False))
    assert_within_limits(report_blocks.build_error(text, usage))


def test_the_checker_catches_what_slack_refuses():
    """Not vacuous: each limit the checker enforces fails a block that breaks it."""
    too_long_button = {
        "type": "actions",
        "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b" * 76}, "action_id": "a"}],
    }
    assert limit_problems([too_long_button])
    assert limit_problems([{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}}])
    assert limit_problems([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}])
    assert limit_problems([{"type": "divider"}] * 51)
    assert limit_problems([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c" * 3001}]}])
    assert not limit_problems([{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3000}}])
