"""Slack misbehaving: rate limits, missing channels, inactive or uninstalled workspaces. The bot
keeps serving, records what failed, and never posts a recap twice."""

from __future__ import annotations

import pytest

from bot.jobs.recaps import recap_job
from tests.slack.test_recap_slack import NOW, fake, ledger, posts, seeded, subscribe  # noqa: F401 (fixtures)
from tests.support.slack_app import all_text, make_runtime, send, slack_client


@pytest.mark.parametrize("error", ["not_in_channel", "channel_not_found", "account_inactive", "invalid_auth"])
def test_a_refused_post_is_recorded_once_and_the_bot_keeps_serving(seeded, fake, error):  # noqa: F811
    subscribe(seeded)
    fake.fail_next("chat.postMessage", error=error)
    [outcome] = recap_job(make_runtime(seeded, fake), now=NOW)
    assert outcome.status == "failed" and outcome.error == error
    assert len(posts(fake)) == 1  # tried once; Slack said no, so nothing was posted
    assert ledger(seeded) == [("failed", 1, None, error)]
    assert fake.calls_to("files.getUploadURLExternal") == []  # no chart without its message
    with slack_client(seeded, fake) as client:
        assert "Your AI spend" in all_text(send(client, "me 30d", user_id="UANA"))


def test_a_rate_limited_chart_upload_is_retried_and_posted_once(seeded, fake):  # noqa: F811
    subscribe(seeded)
    fake.fail_next("files.getUploadURLExternal", status=429, error="ratelimited", retry_after=0)
    [outcome] = recap_job(make_runtime(seeded, fake), now=NOW)
    assert outcome.status == "posted"
    assert len(posts(fake)) == 1
    assert len(fake.calls_to("files.getUploadURLExternal")) == 2  # the 429, then the upload
    assert len(fake.calls_to("files.completeUploadExternal")) == 1
    assert [status for status, *_ in ledger(seeded)] == ["posted"]
