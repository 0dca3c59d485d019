"""The weekly recap's test world: a subscription due now, and what reached the channel and the
delivery ledger (tests/slack/test_recap_slack.py and test_slack_faults.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import time as clock

from sqlalchemy import select

from bot.db.models import RecapDelivery, RecapSubscription
from bot.services import recap
from tests.support.slack_app import TODAY

NOW = datetime.combine(TODAY, clock(12, 0), tzinfo=UTC)
CHANNEL = "CPAYMENTS"


def subscribe(
    engine, *, group="SPLATFORM", channel=CHANNEL, when=NOW, post_when_empty=True
) -> RecapSubscription:
    """A subscription due on ``when``'s weekday at 00:00 UTC, made a month earlier."""
    with engine.begin() as conn:
        sub, _ = recap.subscribe(
            conn,
            workspace_id="default",
            channel_id=channel,
            group_id=group,
            weekday=when.weekday(),
            local_time="00:00",
            post_when_empty=post_when_empty,
            created_by="UADMIN",
            now=when - timedelta(days=30),
        )
    return sub


def posts(fake, channel=CHANNEL):
    return [c for c in fake.calls_to("chat.postMessage") if c.params.get("channel") == channel]


def ledger(engine):
    with engine.connect() as conn:
        return conn.execute(
            select(
                RecapDelivery.status, RecapDelivery.attempts, RecapDelivery.message_ts, RecapDelivery.error
            )
        ).all()
