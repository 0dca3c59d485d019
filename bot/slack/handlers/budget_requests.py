"""``/tokens budget request`` (ask for more) and the Approve / Deny buttons on the DM it sends.

Rules live in ``bot.services.budgets`` (who may decide: ``bot.services.access``); this module
reads Slack (who clicked, what they typed) and writes to it (the DMs and their updates).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import access, budgets, people, privacy
from bot.services.budgets import BudgetError
from bot.services.runtime import Runtime
from bot.slack.background import in_background
from bot.slack.blocks import budget_requests as views
from bot.slack.blocks.common import Message
from bot.slack.blocks.format import usd
from bot.slack.blocks.reports import build_error, build_not_linked
from bot.slack.context import (
    CommandContext,
    admins_hint,
    authorized_workspace,
    caller_person,
    resolve_caller,
    run_db,
)
from bot.slack.directory import SlackDirectory
from bot.slack.messaging import send_dm, slack_error

log = logging.getLogger(__name__)


# -- requests for more -------------------------------------------------------------------------


async def request_more(ctx: CommandContext, args: list[str]) -> Message:
    amount, reason = budgets.parse_request(args)
    return await ask_for_more(ctx, amount, reason)


async def ask_for_more(
    ctx: CommandContext, amount: int, reason: str, *, budget_id: int | None = None
) -> Message:
    """Ask for ``amount`` more on the tightest budget that applies to the caller (or the one
    they picked, ``budget_id``); when two tie, the answer asks which, with a button each."""
    caller = ctx.caller
    workspace_id = caller.workspace_id
    settings = ctx.runtime.settings
    person = await caller_person(ctx)
    if person is None:
        return build_not_linked(admins_hint=admins_hint(ctx.runtime))
    today = ctx.runtime.today()
    viewer = access.Viewer(caller.user_id, caller.is_admin, person.id)

    def load(conn):
        pending = budgets.pending_request(conn, workspace_id=workspace_id, person_id=person.id)
        items = budgets.statuses_for_person(
            conn,
            workspace_id=workspace_id,
            viewer=viewer,
            person_id=person.id,
            today=today,
            min_group_size=settings.min_group_size,
        )
        aim = budgets.aim_request(items, budget_id=budget_id)
        target = aim.target
        asked = (
            budgets.deciders(
                conn,
                workspace_id=workspace_id,
                person_id=person.id,
                budget=target.budget,
                team=target.team,
                settings=settings,
            )
            if target
            else []
        )
        return pending, aim, asked

    pending, aim, asked = await ctx.db(load)
    if pending is not None:
        return build_error(
            f"You already asked for {usd(pending.amount_micros)} more (request #{pending.id}); "
            "wait for that decision before asking again. Nothing changed."
        )
    if aim.choices:
        return views.build_request_choice(aim.choices, amount_micros=amount, reason=reason)
    target = aim.target
    if target is None:
        if budget_id is not None:
            return build_error("That budget no longer applies to you; nothing was sent.")
        return build_error(
            "No budget applies to you, so there is nothing to raise. `/tokens budget` shows budgets."
        )
    if not asked:
        return build_error(
            f"Nobody can decide your request: you have no team manager and no admin I can reach "
            f"({admins_hint(ctx.runtime)}). Nothing was sent."
        )
    request = await ctx.db(
        budgets.create_request,
        workspace_id=workspace_id,
        person_id=person.id,
        requester_user_id=caller.user_id,
        budget=target.budget,
        amount_micros=amount,
        reason=reason,
        write=True,
    )
    # The deciders see the budget in full, and about the requester ("they"), not as the
    # requester sees it.
    shown = replace(target, visibility=budgets.FULL, person_slack_id=caller.user_id, own=False)
    dm = views.build_request_dm(request, requester=f"<@{caller.user_id}>", status=shown)
    refs, failures = [], []
    for user_id in asked:
        try:
            refs.append(await send_dm(ctx.client, user_id, dm))
        except Exception as error:  # one unreachable manager must not stop the others
            failures.append(f"<@{user_id}> ({slack_error(error)})")
            log.warning("budget request %s: DM to %s failed: %s", request.id, user_id, slack_error(error))
    await ctx.db(
        budgets.set_notified, workspace_id=workspace_id, request_id=request.id, refs=refs, write=True
    )
    reached = [u for u in asked if not any(f.startswith(f"<@{u}>") for f in failures)]
    # The DM shows the requester's spend against their budget: each decider's look is audited.
    await ctx.db(
        privacy.record_views_by,
        workspace_id=workspace_id,
        actor_user_ids=reached,
        action="view.budget_request",
        person_ids=[person.id],
        detail=f"request #{request.id}",
        write=True,
    )
    if not refs:
        return build_error(
            f"I could not reach {', '.join(failures)}; your request #{request.id} is recorded but "
            "nobody was told. "
            f"Ask {admins_hint(ctx.runtime)}."
        )
    return views.build_request_sent(request, status=target, deciders=reached)


# -- Approve / Deny ----------------------------------------------------------------------------


def _state_value(body: dict, block_id: str, action_id: str) -> dict:
    return ((body.get("state") or {}).get("values") or {}).get(block_id, {}).get(action_id) or {}


async def decide(
    runtime: Runtime,
    directory: SlackDirectory,
    client: AsyncWebClient,
    body: dict,
    *,
    approve: bool,
    workspace_id: str,
) -> tuple[Message, bool]:
    """The click's answer and whether it replaces the clicked message (True) or is an extra
    ephemeral note (False). Every check happens before anything is written."""
    user_id = (body.get("user") or {}).get("id", "")
    value = ((body.get("actions") or [{}])[0]).get("value", "")
    if not value.isdigit():
        return views.build_action_error("This button is not a request I know; nothing changed."), False
    request = await run_db(runtime, budgets.get_request, workspace_id=workspace_id, request_id=int(value))
    if request is None:
        return views.build_action_error("This request no longer exists; nothing changed."), False
    requester = f"<@{request.requester_user_id}>"
    slack_user = await directory.user(client, user_id)
    viewer_person = await run_db(
        runtime, people.resolve_slack_user, workspace_id=workspace_id, slack_user_id=user_id
    )
    viewer = access.Viewer(
        user_id,
        access.is_admin(
            runtime.settings,
            user_id=user_id,
            email=slack_user.email if slack_user else None,
            slack_admin=bool(slack_user and slack_user.is_admin),
        ),
        viewer_person.id if viewer_person else None,
    )
    budget = (
        await run_db(runtime, budgets.budget_by_id, workspace_id=workspace_id, budget_id=request.budget_id)
        if request.budget_id is not None
        else None
    )
    team = (
        await run_db(runtime, budgets.team_of_budget, workspace_id=workspace_id, budget=budget)
        if budget
        else None
    )
    decision = await run_db(
        runtime,
        access.can_decide_budget_request,
        workspace_id,
        viewer,
        person_id=request.person_id,
        kind=budget.access_kind if budget else "person",
        team_id=team.id if team else None,
    )
    if not decision.allowed:
        await run_db(
            runtime,
            privacy.record,
            workspace_id=workspace_id,
            actor_user_id=user_id,
            action="budget.request.refused",
            target=privacy.person_target(request.person_id),
            detail=f"request={request.id} {'approve' if approve else 'deny'} refused",
            write=True,
        )
        return views.build_refused(requester), False
    if request.status != budgets.PENDING:
        return views.build_already_decided(request), True
    amount = None
    if approve:
        typed = (_state_value(body, views.AMOUNT_BLOCK, views.AMOUNT_ACTION).get("value") or "").strip()
        if typed:
            try:
                amount = budgets.parse_amount(typed)
            except BudgetError as error:
                return views.build_action_error(
                    f"{error} Nothing changed; fix the amount and click again."
                ), False
    scope = (_state_value(body, views.SCOPE_BLOCK, views.SCOPE_ACTION).get("selected_option") or {}).get(
        "value"
    ) or budgets.SCOPE_PERIOD
    if scope not in (budgets.SCOPE_PERIOD, budgets.SCOPE_PERMANENT):
        scope = budgets.SCOPE_PERIOD
    try:
        result = await run_db(
            runtime,
            budgets.decide_request,
            workspace_id=workspace_id,
            request_id=request.id,
            decider_user_id=user_id,
            approve=approve,
            amount_micros=amount,
            scope=scope,
            today=runtime.today(),
            write=True,
        )
    except BudgetError as error:
        return views.build_action_error(str(error)), False
    if not result.changed:
        return views.build_already_decided(result.request), True
    closed = views.build_request_closed(result.request, requester=requester, result=result)
    try:
        await send_dm(client, request.requester_user_id, views.build_decision_dm(result))
    except Exception as error:
        log.warning("budget request %s: could not DM the decision: %s", request.id, slack_error(error))
    for channel, ts in result.request.notified:
        try:
            await client.chat_update(channel=channel, ts=ts, **closed.as_kwargs())
        except Exception as error:  # the clicked message is replaced through response_url anyway
            log.info("budget request %s: could not update %s: %s", request.id, channel, slack_error(error))
    return closed, True


def register(app: AsyncApp, runtime: Runtime, directory: SlackDirectory) -> None:
    async def answer_click(
        body: dict, client: AsyncWebClient, respond: AsyncRespond, approve: bool, workspace_id: str
    ) -> None:
        try:
            reply, replace_original = await decide(
                runtime, directory, client, body, approve=approve, workspace_id=workspace_id
            )
        except Exception:
            log.exception("budget decision failed")
            reply, replace_original = (
                views.build_action_error("Something went wrong; nothing changed."),
                False,
            )
        try:
            await respond(**reply.as_kwargs(), replace_original=replace_original, response_type="ephemeral")
        except Exception:
            log.warning("could not answer a budget decision click")

    def listener(approve: bool) -> Callable:
        async def on_click(
            ack: AsyncAck,
            body: dict,
            client: AsyncWebClient,
            respond: AsyncRespond,
            context: AsyncBoltContext,
        ) -> None:
            await ack()
            workspace_id = authorized_workspace(runtime, context)
            # The decision DMs the requester and updates every manager's message: after the response.
            in_background(answer_click(body, client, respond, approve, workspace_id), "budget decision click")

        return on_click

    app.action(views.APPROVE)(listener(True))
    app.action(views.DENY)(listener(False))

    async def answer_pick(
        body: dict, client: AsyncWebClient, respond: AsyncRespond, workspace_id: str
    ) -> None:
        try:
            reply = await picked(runtime, directory, client, body, workspace_id=workspace_id)
        except Exception:
            log.exception("budget request pick failed")
            reply = views.build_action_error("Something went wrong; nothing was sent.")
        try:
            await respond(**reply.as_kwargs(), replace_original=True, response_type="ephemeral")
        except Exception:
            log.warning("could not answer a budget request pick")

    @app.action(re.compile(f"^{views.PICK}_\\d+$"))
    async def on_pick(
        ack: AsyncAck, body: dict, client: AsyncWebClient, respond: AsyncRespond, context: AsyncBoltContext
    ) -> None:
        await ack()
        workspace_id = authorized_workspace(runtime, context)
        # Asking DMs the deciders: after Slack has its response.
        in_background(answer_pick(body, client, respond, workspace_id), "budget request pick")


async def picked(
    runtime: Runtime, directory: SlackDirectory, client: AsyncWebClient, body: dict, *, workspace_id: str
) -> Message:
    """A click on one of ``build_request_choice``'s buttons: the request goes on, for the budget
    picked, with every check of ``/tokens budget request`` made again for the one who clicked."""
    pick = views.read_pick(((body.get("actions") or [{}])[0]).get("value", ""))
    if pick is None:
        return views.build_action_error("This button is not a budget I know; nothing was sent.")
    budget_id, amount, reason = pick
    caller = await resolve_caller(
        runtime, directory, client, user_id=(body.get("user") or {}).get("id", ""), workspace_id=workspace_id
    )
    ctx = CommandContext(runtime, directory, client, caller)
    return await ask_for_more(ctx, amount, reason, budget_id=budget_id)
