"""/tokens budget end to end: signed slash commands and signed block_actions payloads into the
real Starlette+Bolt app, Slack faked on loopback; asserts on the replies, the DMs and the rows."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.db.models import AuditLog, Budget, BudgetOverride, BudgetRequest
from bot.slack.blocks import budget_requests as views
from tests.support.inbound import button_click, form_body
from tests.support.slack_app import (
    PLATFORM,
    all_text,
    person_id,
    send,
)
from tests.support.slack_fake import signed_headers

pytestmark = pytest.mark.usefixtures("slack_team")

ANA = "<@UANA|ana>"


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _make_manager(client) -> None:
    reply = all_text(send(client, f"role add manager <@UBEN> {PLATFORM}", user_id="UADMIN"))
    assert "now manages" in reply


def click(
    client, fake_slack, *, user_id: str, action_id: str, request_id: int, amount=None, scope=None, secret=None
):
    """POST a signed block_actions payload as Slack does (``payload=<json>``); returns what the
    listener answered through the response_url."""
    values: dict = {}
    if amount is not None:
        values[views.AMOUNT_BLOCK] = {views.AMOUNT_ACTION: {"type": "plain_text_input", "value": amount}}
    if scope is not None:
        option = {"text": {"type": "plain_text", "text": scope}, "value": scope}
        values[views.SCOPE_BLOCK] = {views.SCOPE_ACTION: {"type": "radio_buttons", "selected_option": option}}
    payload = button_click(
        action_id,
        str(request_id),
        user_id=user_id,
        block_id="budget_request_decide",
        response_url=fake_slack.server.url_for(f"/response_url/{user_id}"),
        container={"channel_id": "DUBEN", "is_ephemeral": False},  # the request's DM to Ben
        channel={"id": "DUBEN", "name": "directmessage"},
        message={"ts": "1700000000.000001", "text": "request"},
        state={"values": values},
    )
    before = len(fake_slack.calls_to("response_url"))
    body = form_body(payload)
    headers = signed_headers(body) if secret is None else signed_headers(body, secret=secret)
    response = client.post("/slack/events", content=body, headers=headers)
    if secret is not None:
        return response
    assert response.status_code == 200, response.text
    return fake_slack.wait_for("response_url", before + 1)[before].params


def _request_row(engine, request_id: int):
    with engine.connect() as conn:
        return conn.execute(select(BudgetRequest.__table__).where(BudgetRequest.id == request_id)).one()


def _latest_request_id(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.max(BudgetRequest.id))).scalar_one()


def test_admin_sets_shows_and_clears_with_before_and_after(client, seeded):
    reply = send(client, f"budget set {ANA} $400/month", user_id="UADMIN")
    text = all_text(reply)
    assert reply["response_type"] == "ephemeral"
    assert "*Budget set* for <@UANA>" in text
    assert (
        "*Before:* _no budget_\n*After:* *$400.00/month* · all vendors · no floor · alerts at 50%, 80%, 100%"
        in text
    )
    assert "resets" in text and "Periods follow UTC" in text
    send(client, f"budget set {ANA} $500 cursor floor 100", user_id="UADMIN")
    changed = all_text(send(client, f"budget set {ANA} 1k thresholds 80", user_id="UADMIN"))
    assert "*Budget changed*" in changed
    assert "*Before:* *$400.00/month* · all vendors" in changed
    assert "*After:* *$1,000.00/month* · all vendors · no floor · alerts at 80%" in changed
    with seeded.connect() as conn:
        ana = person_id(conn, "ana@example.com")
        audit = conn.execute(select(AuditLog.action, AuditLog.target, AuditLog.actor_user_id)).all()
    assert audit.count(("budget.set", f"person:{ana}", "UADMIN")) == 3

    own = all_text(send(client, "budget"))  # ana sees what applies to her
    assert "Budgets that apply to you" in own and "$1,000.00/month (all vendors)" in own
    assert "$500.00/month (Cursor)" in own and "$100.00" in own  # the floor, however far along
    assert own.count("*Tightest:*") == 1
    me = all_text(send(client, "me"))
    assert "*Budgets*" in me and "$1,000.00/month" in me

    cleared = all_text(send(client, f"budget clear {ANA} cursor", user_id="UADMIN"))
    assert "Removed 1 budget(s) of <@UANA>" in cleared and "*After:* _no budget_" in cleared
    assert _count(seeded, Budget) == 1
    again = all_text(send(client, f"budget clear {ANA} cursor", user_id="UADMIN"))
    assert (
        "has no budget for github_copilot" not in again
        and "has no budget for cursor; nothing changed" in again
    )


def test_managers_set_budgets_for_their_teams_only(client, seeded):
    _make_manager(client)
    assert "*Budget set* for <@UANA>" in all_text(send(client, f"budget set {ANA} $300", user_id="UBEN"))
    team = all_text(send(client, f"budget set {PLATFORM} 5k/month cursor", user_id="UBEN"))
    assert "*Budget set* for <!subteam^SPLATFORM>" in team and "*$5,000.00/month* · Cursor" in team
    mine = "(you manage <!subteam^SPLATFORM>)"
    refusals = {
        "budget set <@UIVAN|ivan> $300": "<@UIVAN> is not a member of a team you manage (<!subteam^SPLAT",
        "budget set org $50,000/quarter": "The org budget is set by admins",
        "budget set <!subteam^SPAIR|@pair> $100": f"You do not manage <!subteam^SPAIR> {mine}",
        f"budget clear {PLATFORM}": None,  # allowed: it is theirs
    }
    for command, says in refusals.items():
        text = all_text(send(client, command, user_id="UBEN"))
        if says is None:
            assert "Removed 1 budget(s)" in text
        else:
            assert says in text and "Nothing changed" in text, text
    assert "you manage no team" in all_text(send(client, f"budget set {ANA} $1", user_id="UCHEN"))
    with seeded.connect() as conn:
        rows = conn.execute(select(Budget.target_kind, Budget.amount_micros)).all()
    assert rows == [("person", 300_000_000)]
    # A manager sees their member's budget; a colleague does not.
    assert "$300.00/month" in all_text(send(client, f"budget show {ANA}", user_id="UBEN"))
    refused = all_text(send(client, f"budget show {ANA}", user_id="UCHEN"))
    assert "visible to the people they apply to" in refused and "$300" not in refused


@pytest.mark.parametrize(
    "command, says",
    [
        (f"budget set {ANA} -5", "negative"),
        (f"budget set {ANA} 0", "zero"),
        (f"budget set {ANA} $20,000,000", "which I take for a typo"),
        (f"budget set {ANA} lots", "`lots` is not an amount"),
        (f"budget set {ANA} 5k/yr", "`5k/yr` is ambiguous"),
        ("budget set @ana $400", "`@ana` is not a person, user group or channel I can read"),
        ("budget set <!subteam^SEMPTY|@empty> $400", "has no members I can count"),
        ("budget set <#CSECRET|secret> $400", "I am not in <#CSECRET>"),
        ("budget set <@UNOPE|nope> $400", "I cannot find <@UNOPE> in this workspace"),
        ("budget set <@UNOMAIL|ghost> $400", "has no email visible to me"),
        (f"budget set {ANA} $400 bananas", "not a vendor or an option"),
        ("budget frobnicate", "not a budget command"),
    ],
)
def test_bad_input_gets_a_precise_error_and_changes_nothing(client, seeded, command, says):
    reply = send(client, command, user_id="UADMIN")
    text = all_text(reply)
    assert reply["response_type"] == "ephemeral"
    assert says in text, text
    assert "Budget set" not in text
    assert _count(seeded, Budget) == 0
    with seeded.connect() as conn:
        assert not conn.execute(select(AuditLog.id).where(AuditLog.action.like("budget.%"))).first()


def test_request_is_approved_by_a_manager_through_signed_interactivity(client, fake_slack, seeded):
    _make_manager(client)
    send(client, f"budget set {ANA} $400/month", user_id="UADMIN")
    asked = all_text(send(client, "budget request $200 load tests before the launch"))
    assert "Asked <@UBEN> for $200.00 more" in asked
    dm = fake_slack.calls_to("chat.postMessage")[-1].params
    assert dm["channel"] == "DUBEN" and "<@UANA> asks for $200.00 more" in dm["text"]
    kinds = [b["type"] for b in dm["blocks"]]
    assert kinds.count("input") == 2 and "actions" in kinds
    request_id = _latest_request_id(seeded)
    assert "already asked" in all_text(send(client, "budget request $50 more tests"))
    assert _count(seeded, BudgetRequest) == 1

    # Forged: a wrong signature is rejected before anything runs.
    forged = click(
        client, fake_slack, user_id="UBEN", action_id=views.APPROVE, request_id=request_id, secret="nope"
    )
    assert forged.status_code == 401
    # Someone who does not manage ana: refused, audited, nothing changes.
    refused = click(client, fake_slack, user_id="UCHEN", action_id=views.APPROVE, request_id=request_id)
    assert "Only <@UANA>'s managers and admins can decide" in refused["text"]
    assert refused["replace_original"] is False
    assert _request_row(seeded, request_id).status == "pending"
    with seeded.connect() as conn:
        assert conn.execute(
            select(AuditLog.actor_user_id).where(AuditLog.action == "budget.request.refused")
        ).all() == [("UCHEN",)]
    # A bad amount in the field: nothing changes either.
    bad = click(
        client, fake_slack, user_id="UBEN", action_id=views.APPROVE, request_id=request_id, amount="lots"
    )
    assert "`lots` is not an amount" in bad["text"] and _request_row(seeded, request_id).status == "pending"

    updates_before = len(fake_slack.calls_to("chat.update"))
    approved = click(
        client,
        fake_slack,
        user_id="UBEN",
        action_id=views.APPROVE,
        request_id=request_id,
        amount="$150",
        scope="period",
    )
    assert "approved +$150.00 for this period only by <@UBEN>" in approved["text"]
    assert approved["replace_original"] is True
    row = _request_row(seeded, request_id)
    assert (row.status, row.granted_micros, row.scope, row.decided_by) == (
        "approved",
        150_000_000,
        "period",
        "UBEN",
    )
    with seeded.connect() as conn:
        overrides = conn.execute(select(BudgetOverride.extra_micros, BudgetOverride.request_id)).all()
    assert overrides == [(150_000_000, request_id)]
    told = fake_slack.wait_for("chat.postMessage", 2)[-1].params
    assert told["channel"] == "DUANA"
    assert told["text"].startswith("Approved by <@UBEN>: +$150.00 on your personal budget for")
    assert "This period's ceiling: $400.00 → $550.00" in told["text"]
    update = fake_slack.wait_for("chat.update", updates_before + 1)[-1].params
    assert update["channel"] == "DUBEN" and "actions" not in [b["type"] for b in update["blocks"]]

    # A replayed click (or a second manager's) changes nothing.
    replay = click(
        client, fake_slack, user_id="UBEN", action_id=views.APPROVE, request_id=request_id, amount="$9,999"
    )
    assert "was already approved +$150.00" in replay["text"] and "nothing changed" in replay["text"]
    assert _count(seeded, BudgetOverride) == 1
    assert "$550.00/month (incl. +$150.00 approved for this period)" in all_text(send(client, "budget"))
    with seeded.connect() as conn:
        decided = conn.execute(
            select(AuditLog.detail).where(AuditLog.action == "budget.request.approve")
        ).all()
    assert len(decided) == 1 and "ceiling $400.00 -> $550.00" in decided[0][0]


def test_request_denied_by_an_admin_and_a_permanent_raise(client, fake_slack, seeded):
    _make_manager(client)
    send(client, f"budget set {ANA} $400/month", user_id="UADMIN")
    send(client, "budget request $100 a spike")
    first = _latest_request_id(seeded)
    denied = click(client, fake_slack, user_id="UADMIN", action_id=views.DENY, request_id=first)
    assert "denied by <@UADMIN>" in denied["text"]
    told = fake_slack.wait_for("chat.postMessage", 2)[-1].params
    assert told["channel"] == "DUANA" and told["text"].startswith("Denied by <@UADMIN>")
    assert _request_row(seeded, first).status == "denied" and _count(seeded, BudgetOverride) == 0

    send(client, "budget request $50 a new team member")
    second = _latest_request_id(seeded)
    click(client, fake_slack, user_id="UBEN", action_id=views.APPROVE, request_id=second, scope="permanent")
    with seeded.connect() as conn:
        assert conn.execute(select(Budget.amount_micros)).scalar_one() == 450_000_000
    told = fake_slack.wait_for("chat.postMessage", 4)[-1].params
    assert "from now on. The budget: $400.00 → $450.00 per month." in told["text"]


def test_request_without_a_budget_or_anyone_to_ask(client, fake_slack, seeded):
    assert "No budget applies to you" in all_text(send(client, "budget request $100 tests"))
    send(client, "budget set org $5k/quarter", user_id="UADMIN")
    # The org budget is decided by admins: ULISTED (TOKENWISE_ADMINS) is asked.
    assert "Asked <@ULISTED>" in all_text(send(client, "budget request $100 tests"))
    assert fake_slack.calls_to("chat.postMessage")[-1].params["channel"] == "DULISTED"
