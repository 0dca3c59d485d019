"""Slack misbehaving: rate limits, missing channels, inactive or uninstalled workspaces. The bot
keeps serving, records what failed, and never posts a recap twice."""

from __future__ import annotations

import pytest

from bot.jobs.recaps import recap_job
from tests.support.recaps import NOW, ledger, posts, subscribe
from tests.support.slack_app import all_text, make_runtime, send, slack_client

pytestmark = pytest.mark.usefixtures("slack_team")


@pytest.mark.parametrize("error", ["not_in_channel", "channel_not_found", "account_inactive", "invalid_auth"])
def test_a_refused_post_is_recorded_once_and_the_bot_keeps_serving(seeded, fake_slack, error):
    subscribe(seeded)
    fake_slack.fail_next("chat.postMessage", error=error)
    [outcome] = recap_job(make_runtime(seeded, fake_slack), now=NOW)
    assert outcome.status == "failed" and outcome.error == error
    assert len(posts(fake_slack)) == 1  # tried once; Slack said no, so nothing was posted
    assert ledger(seeded) == [("failed", 1, None, error)]
    assert fake_slack.calls_to("files.getUploadURLExternal") == []  # no chart without its message
    with slack_client(seeded, fake_slack) as client:
        assert "Your AI spend" in all_text(send(client, "me 30d", user_id="UANA"))


def test_a_rate_limited_chart_upload_is_retried_and_posted_once(seeded, fake_slack):
    subscribe(seeded)
    fake_slack.fail_next("files.getUploadURLExternal", status=429, error="ratelimited", retry_after=0)
    [outcome] = recap_job(make_runtime(seeded, fake_slack), now=NOW)
    assert outcome.status == "posted"
    assert len(posts(fake_slack)) == 1
    assert len(fake_slack.calls_to("files.getUploadURLExternal")) == 2  # the 429, then the upload
    assert len(fake_slack.calls_to("files.completeUploadExternal")) == 1
    assert [status for status, *_ in ledger(seeded)] == ["posted"]
