"""The weekly recap end to end: signed /tokens recap commands and vote clicks through the real
Starlette+Bolt app, and the scheduled delivery against the recording fake Slack Web API
(chart upload, managers' DM, retries, rate limits, exactly once across two schedulers).
Runs on SQLite and, with TEST_DATABASE_URL, PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.db.engine import make_engine
from bot.db.models import AuditLog, Person, RecapDelivery, RecapSubscription, RecapVote
from bot.domain.money import format_usd
from bot.jobs.recaps import ChannelPacer, recap_job
from bot.observability import REGISTRY
from bot.services import recap, teams
from bot.slack.blocks.common import validate
from bot.slack.blocks.recap import VOTE_ACTIONS
from tests.support.inbound import button_click, form_body
from tests.support.recaps import CHANNEL, NOW, ledger, posts, subscribe
from tests.support.slack_app import (
    PLATFORM,
    TODAY,
    all_text,
    make_runtime,
    send,
    slack_client,
    spend_of,
)
from tests.support.slack_fake import signed_headers

PLATFORM_EMAILS = [f"{n}@example.com" for n in ("ana", "ben", "chen", "dana", "emil", "farah", "gus", "hana")]

pytestmark = pytest.mark.usefixtures("slack_team")


@pytest.fixture
def fake_slack(fake_slack):
    fake_slack.not_member = {"CSECRET"}  # conversations.info: the bot was never invited there
    return fake_slack


def ben_manages_platform(engine) -> None:
    """Ben is the manager of @platform (a user group: his grant reaches all its members)."""
    with engine.begin() as conn:
        team = teams.ensure_team(
            conn, workspace_id="default", kind=teams.USERGROUP, slack_id="SPLATFORM", name="platform"
        )
        teams.grant_role(
            conn,
            workspace_id="default",
            role="manager",
            slack_user_id="UBEN",
            team_id=team.id,
            granted_by="UADMIN",
        )


def deliveries_metric(status: str) -> float:
    return REGISTRY.get_sample_value("tokenwise_recap_deliveries_total", {"status": status}) or 0.0


def section_text(blocks) -> str:
    return "\n".join(
        b["text"]["text"] if "text" in b else " ".join(f["text"] for f in b.get("fields", []))
        for b in blocks
        if b.get("type") in ("section", "context") and ("text" in b or "fields" in b)
    ) + "\n".join(e.get("text", "") for b in blocks if b.get("type") == "context" for e in b["elements"])


# -- commands ---------------------------------------------------------------------------------------


def test_subscribe_list_unsubscribe(seeded, fake_slack):
    with slack_client(seeded, fake_slack) as client:
        refused = all_text(send(client, f"recap subscribe <#CPAYMENTS|payments> {PLATFORM}"))
        assert "set up by admins and the team's managers" in refused
        hidden = all_text(send(client, "recap subscribe <#CSECRET|secret>", user_id="UADMIN"))
        assert "I am not in <#CSECRET>" in hidden and "`/invite @tokenwise`" in hidden
        bad = all_text(send(client, f"recap subscribe {PLATFORM} someday", user_id="UADMIN"))
        assert "I could not read `someday`" in bad
        with seeded.connect() as conn:
            assert conn.execute(select(RecapSubscription.id)).all() == []

        done = all_text(
            send(client, f"recap subscribe <#CPAYMENTS|payments> {PLATFORM} fri 17:30", user_id="UADMIN")
        )
        assert (
            "Subscribed: <#CPAYMENTS> gets the weekly recap of <!subteam^SPLATFORM> on Fridays at 17:30 (UTC)"
            in done
        )
        again = all_text(
            send(client, f"recap subscribe <#CPAYMENTS|payments> {PLATFORM} mon", user_id="UADMIN")
        )
        assert "Updated" in again and "Mondays at 17:30" in again
        # Without a channel: the one the command is typed in; without a group: its members.
        send(client, "recap subscribe skip-empty", user_id="UADMIN", channel_id=CHANNEL)
        with seeded.connect() as conn:
            rows = conn.execute(
                select(
                    RecapSubscription.channel_id,
                    RecapSubscription.group_id,
                    RecapSubscription.weekday,
                    RecapSubscription.local_time,
                    RecapSubscription.post_when_empty,
                ).order_by(RecapSubscription.id)
            ).all()
        assert rows == [(CHANNEL, "SPLATFORM", 0, "17:30", True), (CHANNEL, "", 0, "09:00", False)]

        listed = all_text(send(client, "recap list"))
        assert "<#CPAYMENTS>: <!subteam^SPLATFORM>, Mondays at 17:30" in listed
        assert "<#CPAYMENTS>: the members of <#CPAYMENTS>, Mondays at 09:00, skip-empty" in listed

        assert "set up by admins" in all_text(
            send(client, f"recap unsubscribe {PLATFORM}", channel_id=CHANNEL)
        )
        send(client, f"role add manager <@UBEN|ben> {PLATFORM}", user_id="UADMIN")
        gone = all_text(send(client, f"recap unsubscribe {PLATFORM}", user_id="UBEN", channel_id=CHANNEL))
        assert "no longer gets the weekly recap of <!subteam^SPLATFORM>" in gone
        nothing = all_text(send(client, f"recap unsubscribe {PLATFORM}", user_id="UBEN", channel_id=CHANNEL))
        assert "has no weekly recap of <!subteam^SPLATFORM>; nothing changed" in nothing
        assert "Use subscribe, list, unsubscribe or preview" in all_text(send(client, "recap sometimes"))
        with seeded.connect() as conn:
            assert conn.execute(select(RecapSubscription.group_id)).scalars().all() == [""]
            actions = (
                conn.execute(select(AuditLog.action).where(AuditLog.action.like("recap.%"))).scalars().all()
            )
        assert actions == ["recap.subscribe", "recap.subscribe", "recap.subscribe", "recap.unsubscribe"]


def test_preview_is_ephemeral_with_the_teams_numbers_and_records_nothing(seeded, fake_slack):
    with slack_client(seeded, fake_slack) as client:
        reply = send(client, f"recap preview {PLATFORM}", user_id="UADMIN", channel_id=CHANNEL)
        assert reply["response_type"] == "ephemeral"
        assert validate(reply["blocks"]) == []
        text = all_text(reply)
        assert "Preview: Weekly AI recap: @platform" in text
        with seeded.connect() as conn:
            spent = spend_of(conn, PLATFORM_EMAILS, TODAY - timedelta(days=7), TODAY)
        assert spent > 0 and f"*{format_usd(spent)}* in" in text
        # The demo's idle burner is one person: the finding is held back, even in a preview.
        assert "The case against" in text and "no value signal" not in text
        assert "Left out: figures from fewer than 5 people" in text
        refused = all_text(send(client, f"recap preview {PLATFORM}", user_id="UNOMAIL", channel_id=CHANNEL))
        assert "for its managers and admins" in refused and "$" not in refused
        # A member of the team: two previews of overlapping channels would be a differencing.
        member = all_text(send(client, f"recap preview {PLATFORM}", user_id="UANA", channel_id=CHANNEL))
        assert "for its managers and admins" in member and "$" not in member
    assert posts(fake_slack) == [] and ledger(seeded) == []


# -- delivery ---------------------------------------------------------------------------------------


def test_delivery_posts_once_with_chart_in_thread_and_detail_to_managers(seeded, fake_slack):
    ben_manages_platform(seeded)
    subscribe(seeded)
    runtime = make_runtime(seeded, fake_slack)
    before = deliveries_metric("posted")
    outcomes = recap_job(runtime, now=NOW)
    assert [o.status for o in outcomes] == ["posted"]
    assert deliveries_metric("posted") == before + 1
    [post] = posts(fake_slack)
    with seeded.connect() as conn:
        delivery_id, ts = conn.execute(select(RecapDelivery.id, RecapDelivery.message_ts)).one()
    assert ts.startswith("1700000000.")
    assert post.params["metadata"] == {
        "event_type": "tokenwise_recap",
        "event_payload": {"delivery_id": delivery_id},
    }
    blocks = post.params["blocks"]
    assert validate(blocks) == []
    assert post.params["text"].startswith("Weekly AI recap: @platform")
    buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [(e["action_id"], e["value"]) for e in buttons] == [
        (a, str(delivery_id)) for a in VOTE_ACTIONS.values()
    ]
    with seeded.connect() as conn:
        spent = spend_of(conn, PLATFORM_EMAILS, TODAY - timedelta(days=7), TODAY)
    assert f"*{format_usd(spent)}*" in section_text(blocks)
    assert "Gus" not in section_text(blocks)  # the idle burner did not opt in to names

    # The chart: upload URL -> bytes -> completed into the recap's thread, with alt text.
    [ask] = fake_slack.calls_to("files.getUploadURLExternal")
    assert ask.params["filename"].endswith(".png") and ask.params["alt_txt"].startswith("Weekly AI spend of")
    assert b"\x89PNG" in fake_slack.uploads[0][:200]
    [complete] = fake_slack.calls_to("files.completeUploadExternal")
    assert complete.params["channel_id"] == CHANNEL and complete.params["thread_ts"] == ts

    # The people behind the findings, privately to the manager, and audited.
    [opened] = fake_slack.calls_to("conversations.open")
    assert opened.params["users"] == "UBEN"
    [dm] = posts(fake_slack, channel="DUBEN")
    assert "Gus Lindqvist" in section_text(dm.params["blocks"])
    with seeded.connect() as conn:
        viewers = (
            conn.execute(select(AuditLog.actor_user_id).where(AuditLog.action == "view.recap_detail"))
            .scalars()
            .all()
        )
    assert viewers and set(viewers) == {"UBEN"}

    # Once per week: later ticks, this week, post nothing more.
    assert recap_job(runtime, now=NOW + timedelta(minutes=5)) == []
    assert recap_job(runtime, now=NOW + timedelta(days=2)) == []
    assert len(posts(fake_slack)) == 1 and ledger(seeded) == [("posted", 1, ts, None)]


def test_the_idle_burn_of_one_person_never_reaches_the_channel(seeded, fake_slack):
    """The attack of issue 14 (4): the demo's only idle burner is Gus; the recap once posted
    "$X (N% of the week's spend) went on usage with no value signal… Who: 1 person" in the
    channel. Through the recap job: no channel message holds the figure, the manager's DM does,
    and Gus's `audit me` lists the manager's look."""
    import re

    ben_manages_platform(seeded)
    subscribe(seeded)
    runtime = make_runtime(seeded, fake_slack)
    assert [o.status for o in recap_job(runtime, now=NOW)] == ["posted"]
    [dm] = posts(fake_slack, channel="DUBEN")
    detail = section_text(dm.params["blocks"])
    assert "Not posted in the channel (fewer than 5 people)" in detail and "Gus Lindqvist" in detail
    figure = re.search(
        r"(\$[\d,]+\.\d\d) \(\d+% of the week's spend\) went on usage with no value signal", detail
    )
    assert figure is not None
    amount = figure.group(1)
    # Everything that went to the channel: the post, the chart's upload and its alt text.
    to_channel = [
        c
        for c in fake_slack.calls
        if c.params.get("channel") == CHANNEL or c.params.get("channel_id") == CHANNEL
    ]
    to_channel += fake_slack.calls_to("files.getUploadURLExternal")
    assert to_channel
    for call in to_channel:
        text = json.dumps(call.params)
        assert "no value signal" not in text and amount not in text and "Who: 1 person" not in text
    assert "Left out: figures from fewer than 5 people" in json.dumps(posts(fake_slack)[0].params["blocks"])
    # The look is in Gus's audit, seen through the app.
    with slack_client(seeded, fake_slack) as client:
        mine = all_text(send(client, "audit me", user_id="UGUS"))
    assert "<@UBEN> was sent, as a manager, the recap detail about <@UGUS>" in mine
    # Once: later ticks send neither the post nor the DM again.
    assert recap_job(runtime, now=NOW + timedelta(minutes=5)) == []
    assert len(posts(fake_slack, channel="DUBEN")) == 1


def test_two_schedulers_at_once_post_once(seeded, fake_slack, db_url):
    subscribe(seeded)
    other = make_engine(db_url)  # a second process has its own engine and pool
    runtimes = [make_runtime(seeded, fake_slack), make_runtime(other, fake_slack)]
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def run(i: int) -> None:
        barrier.wait()
        results[i] = recap_job(runtimes[i], now=NOW)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    other.dispose()
    assert sorted(len(r) for r in results) == [0, 1]
    assert len(posts(fake_slack)) == 1
    assert [(status, attempts) for status, attempts, _, _ in ledger(seeded)] == [("posted", 1)]


def test_a_failed_post_is_retried_later_and_shows_in_status(seeded, fake_slack):
    subscribe(seeded)
    runtime = make_runtime(seeded, fake_slack)
    fake_slack.fail_next("chat.postMessage", error="channel_not_found")
    [failed] = recap_job(runtime, now=NOW)
    assert failed.status == "failed" and failed.error == "channel_not_found"
    assert ledger(seeded) == [("failed", 1, None, "channel_not_found")]
    with slack_client(seeded, fake_slack) as client:
        status = all_text(send(client, "status", user_id="UADMIN"))
    assert "Weekly recaps not delivered" in status and "failed after 1 attempt(s), retrying" in status
    assert "`channel_not_found`" in status
    assert recap_job(runtime, now=NOW + timedelta(minutes=4)) == []  # pausing before the retry
    [retried] = recap_job(runtime, now=NOW + timedelta(minutes=6))
    assert retried.status == "posted"
    assert [(s, a, e) for s, a, _, e in ledger(seeded)] == [("posted", 2, None)]
    with slack_client(seeded, fake_slack) as client:
        assert "Weekly recaps not delivered" not in all_text(send(client, "status", user_id="UADMIN"))


def test_rate_limited_post_waits_for_retry_after_and_posts_once(seeded, fake_slack):
    subscribe(seeded)
    fake_slack.fail_next("chat.postMessage", status=429, error="ratelimited", retry_after=1)
    started = time.monotonic()
    [outcome] = recap_job(make_runtime(seeded, fake_slack), now=NOW)
    assert outcome.status == "posted"
    assert time.monotonic() - started >= 1.0
    assert len(posts(fake_slack)) == 2  # the 429, then the post
    assert [s for s, *_ in ledger(seeded)] == ["posted"]


def test_posts_to_one_channel_are_spaced():
    async def run() -> float:
        pacer = ChannelPacer(interval=0.3)
        started = time.monotonic()
        await pacer.wait("C1")
        await pacer.wait("C2")  # another channel: no wait
        assert time.monotonic() - started < 0.2
        await pacer.wait("C1")
        return time.monotonic() - started

    assert asyncio.run(run()) >= 0.3


def test_an_interrupted_post_is_found_in_the_channel_not_posted_twice(seeded, fake_slack):
    sub = subscribe(seeded)
    with seeded.begin() as conn:  # a process claimed 20 minutes ago and died
        held = recap.claim(conn, sub, NOW.date() - timedelta(days=NOW.weekday()), NOW - timedelta(minutes=20))
    fake_slack.history[CHANNEL] = [
        {
            "ts": "1699999999.000100",
            "metadata": {"event_type": "tokenwise_recap", "event_payload": {"delivery_id": held.delivery_id}},
        }
    ]
    [outcome] = recap_job(make_runtime(seeded, fake_slack), now=NOW)
    assert outcome.status == "recovered" and posts(fake_slack) == []
    assert ledger(seeded) == [("posted", 2, "1699999999.000100", None)]


def test_an_interrupted_post_not_in_the_channel_is_posted(seeded, fake_slack):
    sub = subscribe(seeded)
    with seeded.begin() as conn:
        recap.claim(conn, sub, NOW.date() - timedelta(days=NOW.weekday()), NOW - timedelta(minutes=20))
    [outcome] = recap_job(make_runtime(seeded, fake_slack), now=NOW)
    assert outcome.status == "posted" and len(posts(fake_slack)) == 1
    [history] = fake_slack.calls_to("conversations.history")
    assert history.params["channel"] == CHANNEL


def test_an_interrupted_post_that_cannot_be_checked_is_not_reposted(seeded, fake_slack):
    sub = subscribe(seeded)
    with seeded.begin() as conn:
        recap.claim(conn, sub, NOW.date() - timedelta(days=NOW.weekday()), NOW - timedelta(minutes=20))
    fake_slack.fail_next("conversations.history", error="missing_scope")
    [outcome] = recap_job(make_runtime(seeded, fake_slack), now=NOW)
    assert outcome.status == "failed" and posts(fake_slack) == []
    [(status, attempts, _, error)] = ledger(seeded)
    assert (status, attempts) == ("failed", recap.MAX_ATTEMPTS) and "missing_scope" in error
    assert recap_job(make_runtime(seeded, fake_slack), now=NOW + timedelta(hours=3)) == []


def test_no_usage_gets_a_short_post_or_silence(seeded, fake_slack):
    subscribe(seeded, group="SEMPTY")
    subscribe(seeded, group="SEMPTY", channel="CQUIET", post_when_empty=False)
    outcomes = recap_job(make_runtime(seeded, fake_slack), now=NOW)
    assert sorted(o.status for o in outcomes) == ["posted", "skipped"]
    [post] = posts(fake_slack)
    assert post.params["text"] == "No AI usage recorded for @SEMPTY this week."
    assert (
        posts(fake_slack, channel="CQUIET") == [] and fake_slack.calls_to("files.getUploadURLExternal") == []
    )
    assert sorted(s for s, *_ in ledger(seeded)) == ["posted", "skipped"]


# -- the vote ---------------------------------------------------------------------------------------


def click(
    client, fake_slack, post, *, user_id: str, choice: str, value: str | None = None, ts: str = ""
) -> None:
    if value is None:  # the button the recap posted
        value = next(
            e["value"] for b in post.params["blocks"] if b["type"] == "actions" for e in b["elements"]
        )
    payload = button_click(
        VOTE_ACTIONS[choice],
        value,
        user_id=user_id,
        block_id="tokenwise_recap_vote",
        response_url=fake_slack.server.url_for("/response_url/vote"),
        container={"message_ts": ts, "channel_id": CHANNEL, "is_ephemeral": False},
        channel={"id": CHANNEL, "name": "payments"},
        message={"type": "message", "ts": ts, "text": post.params["text"], "blocks": post.params["blocks"]},
    )
    body = form_body(payload)
    response = client.post("/slack/events", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text


def test_votes_through_signed_block_actions_tally_live(seeded, fake_slack):
    subscribe(seeded)
    recap_job(make_runtime(seeded, fake_slack), now=NOW)
    [post] = posts(fake_slack)
    with seeded.connect() as conn:
        ts = conn.execute(select(RecapDelivery.message_ts)).scalar_one()
    with slack_client(seeded, fake_slack) as client:
        click(client, fake_slack, post, user_id="UANA", choice="worth", ts=ts)
        [first] = fake_slack.wait_for("chat.update", 1)
        click(client, fake_slack, post, user_id="UBEN", choice="not_worth", ts=ts)
        click(client, fake_slack, post, user_id="UANA", choice="unsure", ts=ts)  # changes her vote
        updates = fake_slack.wait_for("chat.update", 3)
        click(client, fake_slack, post, user_id="UANA", choice="worth", value="preview", ts=ts)
        [note] = fake_slack.wait_for("response_url", 1)

    def tally(call) -> str:
        block = next(b for b in call.params["blocks"] if b.get("block_id") == "tokenwise_recap_tally")
        return block["elements"][0]["text"]

    assert first.params["channel"] == CHANNEL and first.params["ts"] == ts
    assert tally(first).startswith("Votes so far: Worth it *1* · Not sure *0* · Not worth it *0* (1 in all")
    assert tally(updates[-1]).startswith(
        "Votes so far: Worth it *0* · Not sure *1* · Not worth it *1* (2 in all"
    )
    # Everything but the tally is the recap as posted.
    assert [b for b in updates[-1].params["blocks"] if b.get("block_id") != "tokenwise_recap_tally"] == [
        b for b in post.params["blocks"] if b.get("block_id") != "tokenwise_recap_tally"
    ]
    assert "preview" in note.params["text"] and note.params.get("replace_original") is False
    with seeded.connect() as conn:
        votes = conn.execute(select(RecapVote.user_id, RecapVote.choice).order_by(RecapVote.user_id)).all()
    assert votes == [("UANA", "unsure"), ("UBEN", "not_worth")]


def test_last_weeks_vote_is_shown_in_the_next_recap(seeded, fake_slack):
    subscribe(seeded, when=NOW - timedelta(days=7))
    runtime = make_runtime(seeded, fake_slack)
    [last] = recap_job(runtime, now=NOW - timedelta(days=7))
    assert last.status == "posted"
    with seeded.begin() as conn:
        delivery_id = conn.execute(select(RecapDelivery.id)).scalar_one()
        recap.record_vote(conn, delivery_id=delivery_id, user_id="UANA", choice="worth")
        recap.record_vote(conn, delivery_id=delivery_id, user_id="UBEN", choice="not_worth")
    [this] = recap_job(runtime, now=NOW)
    assert this.status == "posted"
    first, second = posts(fake_slack)
    assert "Last week's vote" not in section_text(first.params["blocks"])
    assert "Last week's vote: Worth it 1 · Not sure 0 · Not worth it 1 (2 votes)" in section_text(
        second.params["blocks"]
    )


# -- the command line -------------------------------------------------------------------------------


def test_cli_preview_prints_the_demo_recap_and_writes_the_chart(tmp_path):
    from bot.cli import app

    runner = CliRunner()
    url = f"sqlite:///{tmp_path}/demo.db"
    assert (
        runner.invoke(app, ["demo", "--database-url", url, "--output", str(tmp_path / "b.json")]).exit_code
        == 0
    )
    chart = tmp_path / "chart.png"
    result = runner.invoke(
        app, ["recap", "--channel", "CDEMO", "--preview", "--database-url", url, "--chart", str(chart)]
    )
    assert result.exit_code == 0, result.output
    assert "Weekly AI recap: #CDEMO (everyone in the database)" in result.output
    assert "The case for" in result.output and "The case against" in result.output
    assert "Worth it" in result.output
    assert chart.read_bytes()[:4] == b"\x89PNG"
    refused = runner.invoke(app, ["recap", "--channel", "CDEMO", "--database-url", url])
    assert refused.exit_code == 2 and "only --preview works here" in refused.output


def test_the_recap_detail_names_no_one_the_managers_grant_does_not_reach(seeded, fake_slack, monkeypatch):
    """A manager hears of a withheld finding only when every person behind it is within their
    grant (a joiner invited into a managed channel is not): the idle burner Gus, outside Ben's
    reach here, is in no DM and no audit entry of Ben's."""
    from bot.services import access

    ben_manages_platform(seeded)
    with seeded.connect() as conn:
        gus = conn.execute(select(Person.id).where(Person.email == "gus@example.com")).scalar_one()
    reaches = access.manages_person
    monkeypatch.setattr(
        access,
        "manages_person",
        lambda conn, ws, user, person: person != gus and reaches(conn, ws, user, person),
    )
    subscribe(seeded)
    assert [o.status for o in recap_job(make_runtime(seeded, fake_slack), now=NOW)] == ["posted"]
    for dm in posts(fake_slack, channel="DUBEN"):
        assert "Gus" not in json.dumps(dm.params)
    with slack_client(seeded, fake_slack) as client:
        assert "<@UBEN>" not in all_text(send(client, "audit me", user_id="UGUS"))
