"""What Slack would show the demo org, for ``tokenwise demo``: the messages it prints and writes
to demo-blocks.json, read through the same services and drawn by the same builders as the bot's
replies (``/tokens me`` as the first demo person, ``/tokens org``, ``/tokens status`` in demo
mode, and the weekly recap of everyone)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection

from bot.domain.periods import parse_period
from bot.services import recap, reports
from bot.services.people import find_by_email
from bot.services.status import status_report
from bot.settings import Settings
from bot.slack.blocks.common import Message
from bot.slack.blocks.recap import build_recap
from bot.slack.blocks.reports import build_me, build_org, build_status
from bot.sources.demo import PEOPLE, demo_connectors


def demo_messages(conn: Connection, settings: Settings, today: date) -> list[tuple[str, Message]]:
    """(name, message) of each message, the synced demo org in ``settings.workspace_id``."""
    workspace_id = settings.workspace_id
    period = parse_period("30d", today)
    person = find_by_email(conn, workspace_id=workspace_id, email=PEOPLE[0].email)
    me = reports.person_report(
        conn, workspace_id=workspace_id, person_ids=[person.id], period=period, today=today
    )
    org = reports.org_report(conn, workspace_id=workspace_id, period=period, today=today)
    org_models = reports.org_models(conn, workspace_id=workspace_id, period=period)
    lags = {c.name: c.lag for c in demo_connectors(today)}
    status = status_report(conn, workspace_id=workspace_id, enabled=lags)
    weekly = recap.load_recap(
        conn,
        workspace_id=workspace_id,
        scope=recap.people_scope(conn, workspace_id=workspace_id, label="#demo (everyone)"),
        end=today,
        min_group_size=settings.min_group_size,
        idle_days=settings.github_delivery_idle_days,
        today=today,
    )
    return [
        (
            f"/tokens me 30d  (as {person.display_name})",
            build_me(me, who=person.display_name, models=me.models, tz=settings.tz),
        ),
        ("/tokens org 30d  (admin)", build_org(org, models=org_models)),
        ("/tokens status  (TOKENWISE_DEMO=1)", build_status(status, tz=settings.tz, demo_mode=True)),
        ("weekly recap  (everyone in the demo)", build_recap(weekly)),
    ]
