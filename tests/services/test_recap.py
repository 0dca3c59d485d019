"""The recap computed from a known data set (every number checked), its Block Kit within Slack's
limits at 500 people and 20 models, the chart, the schedule, the ledger and the votes.
Storage tests run on SQLite and, with TEST_DATABASE_URL, PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.db import rollups
from bot.db.models import (
    ActivityDaily,
    Budget,
    Person,
    RecapDelivery,
    RecapSubscription,
    RecapVote,
    UsageDaily,
)
from bot.domain.models import model_family
from bot.domain.records import ACTIVITY_FIELDS
from bot.services import recap, teams
from bot.services.commands import CommandError
from bot.services.recap.lines import fold_values
from bot.slack.blocks.common import MAX_SECTION_TEXT, validate
from bot.slack.blocks.recap import TALLY_BLOCK, build_manager_detail, build_recap, with_tally
from bot.slack.blocks.recap_chart import chart_alt_text, render_chart
from tests import factories

USD = 1_000_000
END = date(2026, 3, 16)  # a Monday: the recap week is Mar 9-15
THIS = END - timedelta(days=7)
W = "w"


def add_person(conn, n: int, *, show: bool = False, slack: str | None = None) -> int:
    """Person n: p<n>@x.io, Slack user UP<n>, named in channels only when ``show``."""
    return factories.add_person(
        conn,
        f"p{n}",
        slack or f"UP{n}",
        workspace_id=W,
        domain="x.io",
        display_name=f"Person {n}",
        show_name_in_channels=show,
    )


# Rows for one insert of many (the tests bring the rollups in step after it).
usage_row = partial(
    factories.usage_values,
    workspace_id=W,
    model="gpt-4.1",
    input_tokens=1_000_000,
    actor="email:p{person_id}@x.io:{kind}",
)
activity_row = partial(factories.activity_values, workspace_id=W, actor="a:{person_id}")
make_team = partial(factories.add_team, workspace_id=W, today=END - timedelta(days=60), name="eng")


@pytest.fixture
def known(engine):
    """Six members p1..p6 (p1 opted in to names) over four baseline weeks and this week, plus a
    leaver and an outsider whose spend must not count. See the test below for the story."""
    rows_u, rows_a = [], []
    with engine.begin() as conn:
        p = {n: add_person(conn, n, show=(n == 1)) for n in range(1, 9)}
        team = make_team(conn, "S1", {f"UP{n}": p[n] for n in range(1, 8)})
        # p7 leaves two weeks before the recap's end; p8 was never a member.
        teams.apply_refresh(
            conn,
            workspace_id=W,
            team_id=team.id,
            known={f"UP{n}": p[n] for n in range(1, 7)},
            new_members=[],
            today=END - timedelta(days=14),
        )
        for i in range(1, 5):  # baseline weeks: $10 and 1M tokens each, accepted lines and commits
            day = THIS - timedelta(days=7 * i)
            for n in range(1, 7):
                rows_u.append(usage_row(p[n], day, 10 * USD))
            for n in range(1, 6):
                rows_a.append(
                    activity_row(p[n], day, vendor="cursor", lines_accepted=20, acceptances=20, rejections=20)
                )
                rows_a.append(activity_row(p[n], day + timedelta(days=1), vendor="claude_code", commits=1))
            rows_a.append(activity_row(p[6], day, vendor="claude_code", commits=1, lines_added=10))
        for n in range(1, 6):  # this week: the same spend, half again as many accepted lines
            rows_u.append(usage_row(p[n], THIS + timedelta(days=n), 10 * USD))
            rows_a.append(
                activity_row(p[n], THIS, vendor="cursor", lines_accepted=30, acceptances=30, rejections=30)
            )
            rows_a.append(activity_row(p[n], THIS + timedelta(days=1), vendor="claude_code", commits=1))
        # p6: ten times their usual week on an expensive model, estimated, and nothing to show.
        rows_u.append(
            usage_row(
                p[6],
                THIS + timedelta(days=2),
                100 * USD,
                vendor="claude_code",
                model="claude-opus-4-20250514",
                cost_basis="estimated",
            )
        )
        rows_u.append(
            usage_row(
                p[2],
                THIS,
                4_750_000,
                vendor="github_copilot",
                model="",
                input_tokens=0,
                cost_basis="estimated",
                kind="seat",
            )
        )
        rows_u.append(usage_row(p[7], THIS + timedelta(days=3), 500 * USD))  # left the team: not counted
        rows_u.append(usage_row(p[8], THIS + timedelta(days=3), 900 * USD))  # not a member
        conn.execute(UsageDaily.__table__.insert(), rows_u)
        rollups.rebuild(conn)  # written directly: bring the rollups in step
        fields = dict.fromkeys(ACTIVITY_FIELDS, 0)
        conn.execute(ActivityDaily.__table__.insert(), [{**fields, **r} for r in rows_a])
        rollups.rebuild(conn)  # written directly: bring the rollups in step
        conn.execute(
            Budget.__table__.insert().values(
                workspace_id=W,
                target_kind="group",
                target_id="S1",
                vendor="",
                period="week",
                amount_micros=100 * USD,
            )
        )
    return p, team


def load(engine, team, **kw) -> recap.Recap:
    with engine.connect() as conn:
        return recap.load_recap(
            conn,
            workspace_id=W,
            scope=recap.team_scope(team),
            end=END,
            min_group_size=kw.pop("min_group_size", 1),
            today=END - timedelta(days=1),
            **kw,
        )


def test_recap_numbers_from_a_known_data_set(engine, known):
    p, team = known
    r = load(engine, team)
    weeks = r.facts.weeks
    assert [w.start for w in weeks] == [END - timedelta(days=7 * (i + 1)) for i in range(8)]
    this = weeks[0]
    assert (this.spend_micros, this.estimated_micros, this.seat_micros) == (
        154_750_000,
        104_750_000,
        4_750_000,
    )
    assert this.tokens == 6_000_000
    assert [w.spend_micros for w in weeks[1:5]] == [60 * USD] * 4
    assert [w.has_data for w in weeks] == [True] * 5 + [False] * 3
    assert r.facts.average_micros(lambda w: w.spend_micros) == 60 * USD
    assert (this.ai.lines_accepted, this.ai.acceptances, this.ai.rejections, this.ai.commits) == (
        150,
        150,
        150,
        5,
    )
    assert this.ai.acceptance_rate == 0.5
    assert [w.active_people for w in weeks[:2]] == [6, 6]
    assert r.facts.members == 6
    assert r.people_with_data == 6
    assert r.facts.person_usage[p[6]][:5] == [100 * USD, 10 * USD, 10 * USD, 10 * USD, 10 * USD]
    assert (
        r.facts.person_value.get(p[6], 0) == 0 and r.facts.person_value[p[1]] == 61
    )  # 30 lines, 30 acceptances, 1 commit

    vendors = {line.label: line for line in r.vendors}
    assert list(vendors) == ["claude_code", "openai", "github_copilot"]  # biggest this week first
    assert (
        vendors["openai"].this_micros,
        vendors["openai"].last_micros,
        vendors["openai"].average_micros,
    ) == (
        50 * USD,
        60 * USD,
        60 * USD,
    )
    # The smallest week it was used in counts: 5 people (one of the six skipped a week).
    assert vendors["openai"].people == 5 and vendors["openai"].estimated_micros == 0
    assert (vendors["claude_code"].this_micros, vendors["claude_code"].estimated_micros) == (
        100 * USD,
        100 * USD,
    )
    assert vendors["claude_code"].average_micros == 0
    assert (vendors["github_copilot"].this_micros, vendors["github_copilot"].seat_micros) == (
        4_750_000,
        4_750_000,
    )
    families = {line.label: line for line in r.families}
    assert list(families) == ["Claude Opus", "GPT-4.1"]  # seats are not a model
    assert (families["GPT-4.1"].this_micros, families["GPT-4.1"].base_micros) == (50 * USD, 240 * USD)
    assert families["Claude Opus"].estimated_micros == 100 * USD

    values = {line.vendor: line for line in r.values}
    assert values["cursor"].this.lines_accepted == 150 and values["cursor"].base.lines_accepted == 400
    assert values["claude_code"].this.commits == 5 and values["claude_code"].base.commits == 24
    assert values["claude_code"].base.lines_added == 40

    efficiency = {line.key: line for line in r.efficiency}
    assert list(efficiency) == ["lines_accepted", "commits"]
    assert (efficiency["lines_accepted"].this_micros, efficiency["lines_accepted"].base_micros) == (
        1_031_667,
        600_000,
    )
    assert (efficiency["commits"].this_micros, efficiency["commits"].base_micros) == (30_950_000, 10 * USD)

    assert [f.rule for f in r.case_for] == []
    against = {f.rule: f for f in r.case_against}
    assert list(against) == ["idle_burn", "person_spike", "team_spike", "budget_crossed", "idle_seats"]
    assert against["idle_burn"].numbers == {"people": 1, "micros": 100 * USD, "share": 0.6462}
    assert [x.person_id for x in against["idle_burn"].people] == [p[6]]
    assert against["person_spike"].people[0].note == "$100.00, 10.0× their median week ($10.00)"
    assert against["team_spike"].numbers == {
        "micros": 154_750_000,
        "mean_micros": 60 * USD,
        "stdev_micros": 0,
        "z": None,
    }
    assert (
        against["budget_crossed"].text
        == "Budget crossed: weekly budget at $150.00 of $100.00 (150%, this week)."
    )
    assert against["idle_seats"].numbers == {"seats": 1, "micros": 4_750_000}
    assert [x.person_id for x in against["idle_seats"].people] == [p[2]]
    # Value grew 50%: the pricier blend ($25/M vs $10/M) is not "without more value".
    assert "expensive_model_shift" not in against


def test_a_vendor_reported_idle_seat_list_decides_for_copilot(engine, known):
    p, team = known
    assert load(engine, team, idle_seat_actors=set()).facts.idle_seats == []
    with engine.begin() as conn:
        from bot.db.models import Identity

        conn.execute(Identity.__table__.insert().values(workspace_id=W, actor="github:p2", person_id=p[2]))
    assert [s.person_id for s in load(engine, team, idle_seat_actors={"github:p2"}).facts.idle_seats] == [
        p[2]
    ]


def test_channel_post_names_only_people_who_opted_in(engine, known):
    p, team = known
    r = load(engine, team)
    blocks = build_recap(r).blocks
    text = "\n".join(b["text"]["text"] for b in blocks if b.get("type") == "section" and "text" in b)
    assert "Person 6" not in text and "Who: 1 person (not named: no manager is set" in text
    with engine.begin() as conn:
        conn.execute(update(Person).where(Person.id == p[6]).values(show_name_in_channels=True))
        teams.grant_role(
            conn, workspace_id=W, role="manager", slack_user_id="UBOSS", team_id=team.id, granted_by="UADMIN"
        )
    r = load(engine, team)
    text = "\n".join(
        b["text"]["text"] for b in build_recap(r).blocks if b.get("type") == "section" and "text" in b
    )
    assert "Who: Person 6 ($100.00, 10.0× their median week ($10.00))" in text
    assert "Who: 1 person (details sent privately to the team's managers)" in text  # p2's idle seat
    assert r.managers == ["UBOSS"]
    detail = build_manager_detail(r)
    detail_text = "\n".join(b["text"]["text"] for b in detail.blocks if b.get("type") == "section")
    assert "Person 2: github_copilot seat" in detail_text and "Person 6" not in detail_text
    assert validate(detail.blocks) == []


def test_recap_blocks_show_the_numbers(engine, known):
    _, team = known
    message = build_recap(load(engine, team))
    assert validate(message.blocks) == []
    sections = "\n".join(
        b["text"]["text"] if "text" in b else " ".join(f["text"] for f in b["fields"])
        for b in message.blocks
        if b["type"] == "section"
    )
    assert "*$154.75* in Mar 9 – Mar 15, 2026" in sections
    assert "▲ 158% vs last week ($60.00) · ▲ 158% vs the 4-week average ($60.00)" in sections
    assert "_includes $104.75 estimated, $4.75 seats_" in sections
    assert "*OpenAI* $50.00 _billed_ · last week $60.00 · 4-wk avg $60.00" in sections
    assert "*Claude Code* $100.00 _est._ · last week $0.00 · 4-wk avg $0.00" in sections
    assert "*Claude Opus* $100.00 _est._" in sections
    assert "*Cursor*: 150 lines accepted (▲ 50% vs 4-wk avg), 50% acceptance" in sections
    assert "*Spend per accepted line*\n$1.03 (4-wk $0.60, ▲ 72%)" in sections
    assert "weekly budget: $150.00 of $100.00 (150%, this week)" in sections
    assert "Nothing in this week's data speaks for the spend." in sections
    actions = next(b for b in message.blocks if b["type"] == "actions")
    assert [e["text"]["text"] for e in actions["elements"]] == ["Worth it", "Not sure", "Not worth it"]
    assert {e["value"] for e in actions["elements"]} == {"preview"}  # not posted: nothing to vote on
    assert message.text.startswith("Weekly AI recap: @eng, Mar 9 – Mar 15, 2026: $154.75")


def test_small_groups_fold_into_others_and_a_tiny_team_shows_nothing(engine, known):
    _, team = known
    r = load(engine, team, min_group_size=5)
    # Claude Code and Copilot have one person each: folded with the smallest kept line (OpenAI,
    # 5 people in its smallest week), which makes "others" 1 + 1 + 5.
    assert [(line.label, line.people, line.this_micros) for line in r.vendors] == [("others", 7, 154_750_000)]
    assert not r.too_small
    tiny = load(engine, team, min_group_size=7)
    assert tiny.too_small
    message = build_recap(tiny)
    assert "fewer than 7 people" in message.text and "$" not in str(message.blocks)


def test_a_team_with_no_data_this_week_gets_a_short_post(engine, known):
    _, team = known
    with engine.connect() as conn:
        r = recap.load_recap(
            conn, workspace_id=W, scope=recap.team_scope(team), end=END + timedelta(days=7), min_group_size=1
        )
    assert r.empty
    message = build_recap(r)
    assert message.text == "No AI usage recorded for @eng this week."
    assert validate(message.blocks) == []


def test_block_kit_limits_with_500_people_and_20_models(engine):
    models = [f"model-{i:02d}-{'x' * 40}" for i in range(20)]
    with engine.begin() as conn:
        conn.execute(
            Person.__table__.insert(),
            [
                {
                    "workspace_id": W,
                    "email": f"q{n}@x.io",
                    "slack_user_id": f"UQ{n}",
                    "display_name": f"Someone With A Long Name {n}",
                    "show_name_in_channels": n % 2 == 0,
                }
                for n in range(500)
            ],
        )
        ids = dict(
            conn.execute(select(Person.slack_user_id, Person.id).where(Person.workspace_id == W)).all()
        )
        team = make_team(conn, "S1", ids)
        rows = []
        for n, (_, pid) in enumerate(sorted(ids.items())):
            vendor = ("openai", "anthropic", "cursor", "claude_code", "openrouter", "windsurf")[n % 6]
            for i in range(1, 8):
                rows.append(
                    usage_row(
                        pid, THIS - timedelta(days=7 * i), 10 * USD, vendor=vendor, model=models[n % 20]
                    )
                )
            # Everyone spikes with no value: the longest lists the findings can have.
            rows.append(usage_row(pid, THIS, 100 * USD, vendor=vendor, model=models[(n + 1) % 20]))
            rows.append(
                usage_row(pid, THIS, 4 * USD, vendor="github_copilot", model="", input_tokens=0, kind="seat")
            )
        conn.execute(UsageDaily.__table__.insert(), rows)
        rollups.rebuild(conn)  # written directly: bring the rollups in step
    r = load(engine, team, min_group_size=5)
    assert len(r.families) == 20 and r.people_with_data == 500
    assert {f.rule for f in r.case_against} >= {"idle_burn", "person_spike", "team_spike", "idle_seats"}
    message = build_recap(r)
    assert validate(message.blocks) == []
    assert len(message.blocks) <= 50 and 0 < len(message.text) <= 3000
    for block in message.blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= MAX_SECTION_TEXT
    assert "…and 10 more:" in str(message.blocks)  # families beyond ten are summed, not dropped
    shown = "\n".join(b["text"]["text"] for b in message.blocks if b["type"] == "section" and "text" in b)
    for finding in r.case_against:  # split over sections, none cut off
        assert finding.text in shown
    detail = build_manager_detail(r)
    assert validate(detail.blocks) == [] and "more" in detail.blocks[2]["text"]["text"].splitlines()[-1]


def test_chart_is_a_png_with_alt_text(engine, known):
    _, team = known
    r = load(engine, team)
    png = render_chart(r)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    alt = chart_alt_text(r)
    assert alt.startswith(
        "Weekly AI spend of <!subteam^S1> over 8 weeks, from Jan 19: $0, $0, $0, $60, $60, $60, $60, "
        "$155 ($105 estimated)."
    )
    assert "Accepted lines per week: 0, 0, 0, 100, 100, 100, 100, 150." in alt


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("claude-3-5-sonnet-20241022", "Claude Sonnet"),
        ("claude-opus-4-1", "Claude Opus"),
        ("anthropic/claude-3.5-haiku", "Claude Haiku"),
        ("gpt-4.1-mini", "GPT-4.1 mini"),
        ("gpt-4o-2024-08-06", "GPT-4o"),
        ("gpt-5", "GPT-5"),
        ("o3", "o3"),
        ("o4-mini-2025-04-16", "o4-mini"),
        ("gemini-2.5-flash", "Gemini Flash"),
        ("mistral-large-latest", "mistral-large"),
        ("", "unspecified model"),
    ],
)
def test_model_family(model, family):
    assert model_family(model) == family


# -- subscriptions, schedule, ledger, votes ---------------------------------------------------------


def test_parse_request_reads_any_order_and_refuses_precisely():
    req = recap.parse_request(
        ["fri", "<!subteam^S1|@eng>", "5:30pm", "<#C1|general>", "skip-empty"], usage="u", schedule=True
    )
    assert req == recap.RecapRequest("C1", "general", "S1", "eng", 4, "17:30", False)
    assert recap.parse_request(["Tuesday", "09:05"], usage="u", schedule=True).weekday == 1
    with pytest.raises(CommandError, match=r"`9`.*Times are like `09:00` or `9am`"):
        recap.parse_request(["9"], usage="u", schedule=True)
    with pytest.raises(CommandError, match="at most one day"):
        recap.parse_request(["mon", "tue"], usage="u", schedule=True)
    with pytest.raises(CommandError, match="a channel or a user group"):
        recap.parse_request(["mon"], usage="u", schedule=False)
    with pytest.raises(CommandError, match="`25:00`"):
        recap.parse_request(["25:00"], usage="u", schedule=True)


def _sub(weekday=0, at="09:00", created=datetime(2026, 1, 1, tzinfo=UTC)) -> RecapSubscription:
    return RecapSubscription(
        id=1,
        workspace_id=W,
        channel_id="C1",
        group_id="S1",
        weekday=weekday,
        local_time=at,
        post_when_empty=True,
        created_by="U1",
        created_at=created,
    )


def test_due_week_catches_up_within_the_week_only():
    berlin = ZoneInfo("Europe/Berlin")
    sub = _sub()  # Mondays 09:00 Berlin = 08:00 UTC in March
    monday = date(2026, 3, 16)
    assert recap.due_week(sub, datetime(2026, 3, 16, 7, 59, tzinfo=UTC), berlin) is None
    assert recap.due_week(sub, datetime(2026, 3, 16, 8, 0, tzinfo=UTC), berlin) == monday
    assert (
        recap.due_week(sub, datetime(2026, 3, 18, 12, 0, tzinfo=UTC), berlin) == monday
    )  # down until Wednesday
    assert recap.due_week(sub, datetime(2026, 3, 22, 22, 59, tzinfo=UTC), berlin) == monday  # Sunday 23:59
    assert (
        recap.due_week(sub, datetime(2026, 3, 23, 7, 0, tzinfo=UTC), berlin) is None
    )  # too late for last week
    late = _sub(created=datetime(2026, 3, 17, tzinfo=UTC))  # subscribed after this week's moment
    assert recap.due_week(late, datetime(2026, 3, 18, tzinfo=UTC), berlin) is None
    assert recap.next_run(late, datetime(2026, 3, 18, tzinfo=UTC), berlin) == datetime(
        2026, 3, 23, 9, 0, tzinfo=berlin
    )
    assert recap.recap_end(_sub(weekday=4), monday) == date(2026, 3, 20)


def _subscribe(engine, **kw) -> RecapSubscription:
    with engine.begin() as conn:
        sub, created = recap.subscribe(
            conn,
            workspace_id=W,
            channel_id=kw.get("channel", "C1"),
            group_id=kw.get("group", "S1"),
            weekday=0,
            local_time="09:00",
            post_when_empty=True,
            created_by="UADMIN",
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
    assert created
    return sub


def test_claim_is_exclusive_retries_failures_and_takes_over_stale_claims(engine):
    sub = _subscribe(engine)
    now = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
    week = date(2026, 3, 16)

    def claim(at):
        with engine.begin() as conn:
            return recap.claim(conn, sub, week, at)

    first = claim(now)
    assert first is not None and first.attempt == 1 and first.took_over_since is None
    assert claim(now) is None  # held
    with engine.begin() as conn:
        recap.mark_failed(conn, first.delivery_id, error="channel_not_found")
    assert claim(now + timedelta(minutes=4)) is None  # pause: 5 minutes times the attempts made
    second = claim(now + timedelta(minutes=5))
    assert second is not None and second.attempt == 2 and second.delivery_id == first.delivery_id
    # The holder died mid-post: after STALE_CLAIM another process takes over, told to look first.
    assert claim(now + timedelta(minutes=19)) is None
    third = claim(now + timedelta(minutes=20))
    assert third is not None and third.took_over_since == now + timedelta(minutes=5)
    with engine.begin() as conn:
        recap.mark_posted(conn, third.delivery_id, message_ts="1.2", now=now)
    assert claim(now + timedelta(days=1)) is None
    with engine.connect() as conn:
        rows = conn.execute(select(RecapDelivery.status, RecapDelivery.attempts, RecapDelivery.error)).all()
    assert rows == [("posted", 3, None)]


def test_failures_stop_after_max_attempts_and_show_in_status(engine):
    sub = _subscribe(engine)
    now = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
    at = now
    for attempt in range(1, recap.MAX_ATTEMPTS + 1):
        with engine.begin() as conn:
            held = recap.claim(conn, sub, date(2026, 3, 16), at)
            assert held is not None and held.attempt == attempt
            recap.mark_failed(conn, held.delivery_id, error="not_in_channel")
        at += recap.RETRY_PAUSE * attempt
    with engine.begin() as conn:
        assert recap.claim(conn, sub, date(2026, 3, 16), at + timedelta(hours=5)) is None
        problems = recap.delivery_problems(conn, workspace_id=W, now=at)
    assert [(p.channel_id, p.group_id, p.attempts, p.error, p.retrying) for p in problems] == [
        ("C1", "S1", recap.MAX_ATTEMPTS, "not_in_channel", False)
    ]


def test_votes_one_per_person_changeable_and_last_weeks_result(engine):
    sub = _subscribe(engine)
    now = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    with engine.begin() as conn:
        last = recap.claim(conn, sub, date(2026, 3, 9), now)
        assert (
            recap.record_vote(conn, delivery_id=last.delivery_id, user_id="U1", choice="worth") is None
        )  # unposted
        recap.mark_posted(conn, last.delivery_id, message_ts="1.1", now=now)
        recap.record_vote(conn, delivery_id=last.delivery_id, user_id="U1", choice="worth")
        recap.record_vote(conn, delivery_id=last.delivery_id, user_id="U2", choice="not_worth")
        tally = recap.record_vote(conn, delivery_id=last.delivery_id, user_id="U1", choice="unsure")
    assert tally == recap.Tally(worth=0, unsure=1, not_worth=1)
    with engine.connect() as conn:
        assert conn.execute(
            select(RecapVote.user_id, RecapVote.choice).order_by(RecapVote.user_id)
        ).all() == [
            ("U1", "unsure"),
            ("U2", "not_worth"),
        ]
        assert recap.previous_tally(conn, subscription_id=sub.id, week_start=date(2026, 3, 16)) == tally
        assert recap.previous_tally(conn, subscription_id=sub.id, week_start=date(2026, 3, 9)) is None
    with pytest.raises(ValueError), engine.begin() as conn:
        recap.record_vote(conn, delivery_id=last.delivery_id, user_id="U3", choice="maybe")


def test_with_tally_replaces_only_the_tally_block():
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "x"}},
        {
            "type": "context",
            "block_id": TALLY_BLOCK,
            "elements": [{"type": "mrkdwn", "text": "No votes yet."}],
        },
    ]
    updated = with_tally(blocks, recap.Tally(worth=2, unsure=1))
    assert updated[0] == blocks[0]
    assert updated[1]["block_id"] == TALLY_BLOCK
    assert (
        updated[1]["elements"][0]["text"] == "Votes so far: Worth it *2* · Not sure *1* · Not worth it *0* "
        "(3 in all; click again to change yours)"
    )


def test_unsubscribe_removes_the_ledger_and_votes(engine):
    sub = _subscribe(engine)
    with engine.begin() as conn:
        held = recap.claim(conn, sub, date(2026, 3, 16), datetime(2026, 3, 16, 9, tzinfo=UTC))
        recap.mark_posted(conn, held.delivery_id, message_ts="1.1", now=datetime(2026, 3, 16, 9, tzinfo=UTC))
        recap.record_vote(conn, delivery_id=held.delivery_id, user_id="U1", choice="worth")
        assert recap.unsubscribe(conn, workspace_id=W, channel_id="C1", group_id="S1", actor_user_id="UADMIN")
        assert not recap.unsubscribe(
            conn, workspace_id=W, channel_id="C1", group_id="S1", actor_user_id="UADMIN"
        )
        assert recap.list_subscriptions(conn, workspace_id=W) == []
        assert (
            conn.execute(select(RecapDelivery.id)).all() == []
            and conn.execute(select(RecapVote.id)).all() == []
        )


def test_tokens_another_source_also_reports_count_once(engine, known):
    p, team = known
    before = load(engine, team).facts.weeks[0].tokens
    # Anthropic's usage report repeating Claude Code's tokens (no dollars): must not add tokens.
    overlap = usage_row(
        p[6], THIS + timedelta(days=2), 0, vendor="anthropic", model="claude-opus-4", input_tokens=777
    )
    with engine.begin() as conn:
        conn.execute(UsageDaily.__table__.insert(), [{**overlap, "raw_unit": "tokens_only"}])
        rollups.rebuild(conn)  # written directly: bring the rollups in step
    assert load(engine, team).facts.weeks[0].tokens == before == 6_000_000


def test_active_time_is_a_value_line_like_sessions(engine, known):
    """OTLP time in the tool (Claude Code's active_time.total) shows beside the other signals,
    folded like them; a vendor with no activity at all has no value line."""
    p, team = known

    def sections() -> str:
        blocks = build_recap(load(engine, team)).blocks
        return "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b)

    assert "*OpenAI*:" not in sections()
    with engine.begin() as conn:
        for n in range(1, 6):
            factories.add_activity(
                conn, p[n], THIS + timedelta(days=2), workspace_id=W, vendor="openai", active_seconds=1800
            )
    assert "*OpenAI*: 2 h active" in sections()  # 5 x 30 min
    values = load(engine, team).values
    folded = fold_values(values, min_size=6)  # OpenAI's five people go into "others"
    assert "openai" in {v.vendor for v in values} and "openai" not in {v.vendor for v in folded}
    assert [v.this.active_seconds for v in folded if v.vendor == "others"] == [5 * 1800]
