"""``/tokens budget``: set, show, list and clear budgets, ask for more; and the Approve / Deny
buttons. The scheduled check that sends threshold alerts, early warnings and floor nudges is
``bot.jobs.budget_alerts``.

Rules live in ``bot.services.budgets`` (and who may do what in ``bot.services.access``); this
module reads Slack (mentions, members, who clicked) and writes to it (replies and DMs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.db.models import Person
from bot.services import access, budgets, people, privacy, teams
from bot.services.budgets import BudgetError, TargetRef
from bot.services.commands import CommandError, ParsedCommand, usage_line
from bot.services.runtime import Runtime
from bot.slack.blocks import budgets as views
from bot.slack.blocks.common import Message
from bot.slack.blocks.reports import build_error, build_not_linked
from bot.slack.commands import CommandContext, admins_hint, authorized_workspace, caller_person, in_background
from bot.slack.directory import SlackDirectory
from bot.slack.handlers.teams import TeamReadError, refresh_managed_teams, refresh_team, run_db

log = logging.getLogger(__name__)

VERBS = ("set", "show", "list", "clear", "request")


def _usage() -> str:
    return usage_line("budget")


def _error(error: BudgetError) -> CommandError:
    return CommandError(str(error), _usage())


async def _viewer(ctx: CommandContext) -> tuple[access.Viewer, Person | None]:
    person = await caller_person(ctx)
    return access.Viewer(ctx.caller.user_id, ctx.caller.is_admin, person.id if person else None), person


# -- targets -----------------------------------------------------------------------------------


class Refusal(Exception):
    """A precise reason the command cannot go on; becomes an ephemeral error, nothing changed."""

    def __init__(self, reply: Message) -> None:
        super().__init__(reply.text)
        self.reply = reply


async def _person_target(ctx: CommandContext, target: TargetRef, *, create: bool):
    workspace_id = ctx.caller.workspace_id
    person = await ctx.db(people.find_by_slack_id, workspace_id=workspace_id, slack_user_id=target.slack_id)
    if person is not None or not create:
        return person
    slack_user = await ctx.directory.user(ctx.client, target.slack_id)
    if slack_user is None:
        raise Refusal(build_error(f"I cannot find <@{target.slack_id}> in this workspace; nothing changed."))
    if slack_user.deleted or slack_user.is_bot:
        raise Refusal(
            build_error(f"<@{target.slack_id}> is a deactivated account or a bot; nothing changed.")
        )
    person = await ctx.db(
        people.match_slack_user,
        workspace_id=workspace_id,
        slack_user_id=target.slack_id,
        email=slack_user.email,
        name=slack_user.name,
        write=True,
    )
    if person is None:
        raise Refusal(
            build_error(
                f"<@{target.slack_id}> has no email visible to me, so I cannot tie a budget to their usage. "
                "Nothing changed."
            )
        )
    return person


async def _team_target(ctx: CommandContext, target: TargetRef, *, fresh: bool) -> teams.TeamRef | None:
    """The team as stored; with ``fresh``, its members re-read from Slack when stale or unknown."""
    workspace_id = ctx.caller.workspace_id
    kind = budgets.TEAM_KINDS[target.kind]
    team = await ctx.db(teams.get_team, workspace_id=workspace_id, kind=kind, slack_id=target.slack_id)
    if not fresh:
        return team
    max_age = timedelta(minutes=ctx.runtime.settings.team_refresh_minutes)
    stale = team is None or teams.is_stale(team, now=datetime.now(UTC), max_age=max_age)
    if stale:
        try:
            team, _ = await refresh_team(
                ctx.runtime, ctx.client, ctx.directory, workspace_id, kind, target.slack_id, target.name
            )
        except TeamReadError as error:
            if team is None:
                raise Refusal(build_error(f"{error.message} Nothing changed.")) from None
            log.info("budget: keeping the stored members of %s (%s)", target.slack_id, error.code)
    return team


async def _managed_or_refuse(ctx: CommandContext, target: TargetRef) -> list[teams.TeamRef]:
    """Admins change any budget; anyone else only budgets within teams they manage (never the
    org's). Returns the caller's managed teams (empty for admins)."""
    if ctx.caller.is_admin:
        return []
    managed = await refresh_managed_teams(ctx)
    if target.kind == budgets.ORG or not managed:
        raise _refuse_manage(ctx, target, managed)
    return managed


def _refuse_manage(ctx: CommandContext, target: TargetRef, managed: list[teams.TeamRef]) -> Refusal:
    hint = admins_hint(ctx.runtime)
    if target.kind == budgets.ORG:
        return Refusal(build_error(f"The org budget is set by admins ({hint}). Nothing changed."))
    yours = ", ".join(t.mention for t in managed[:5])
    if not managed:
        return Refusal(
            build_error(
                f"Budgets are set by {access.BUDGET_WHO_CAN_SET}; you manage no team ({hint} can make you "
                "a manager). Nothing changed."
            )
        )
    if target.kind == budgets.PERSON:
        text = (
            f"{target.mention} is not a member of a team you manage ({yours}), or joined a channel "
            "after you were made its manager and is not yet approved by an admin"
        )
    else:
        text = f"You do not manage {target.mention} (you manage {yours})"
    return Refusal(
        build_error(f"{text}; budgets outside your teams are set by admins ({hint}). Nothing changed.")
    )


# -- subcommands -------------------------------------------------------------------------------


async def handle_budget(ctx: CommandContext, command: ParsedCommand) -> Message:
    args = list(command.args)
    verb = args[0].lower() if args else "show"
    try:
        if verb == "set":
            return await _set(ctx, args[1:])
        if verb == "clear":
            return await _clear(ctx, args[1:])
        if verb == "list":
            if len(args) > 1:
                raise CommandError("`/tokens budget list` takes no arguments.", _usage())
            return await _list(ctx)
        if verb == "request":
            return await _request(ctx, args[1:])
        if verb == "show":
            args = args[1:]
        elif args and budgets.parse_target(args[0]) is None and verb != "me":
            raise CommandError(
                f"`{args[0][:40]}` is not a budget command: use {', '.join(VERBS)} or name a target.",
                _usage(),
            )
        if len(args) > 1:
            raise CommandError("Show one target at a time, e.g. `/tokens budget show @ana`.", _usage())
        return await _show(ctx, args[0] if args else None)
    except BudgetError as error:
        raise _error(error) from None
    except Refusal as refusal:
        return refusal.reply


async def _set(ctx: CommandContext, args: list[str]) -> Message:
    spec = budgets.parse_set(args)  # bad input fails here, before any lookup
    caller = ctx.caller
    workspace_id = caller.workspace_id
    target = spec.target
    managed = await _managed_or_refuse(ctx, target)
    viewer, _ = await _viewer(ctx)
    person = team = None
    if target.kind == budgets.PERSON:
        person = await _person_target(ctx, target, create=True)
        target_id = str(person.id)
        who = target.mention
    elif target.kind == budgets.ORG:
        target_id, who = budgets.ORG, "the org"
    else:
        team = await _team_target(ctx, target, fresh=True)
        members = await ctx.db(teams.member_count, team_id=team.id) if team else 0
        if team is None or members == 0:
            raise Refusal(
                build_error(
                    f"{target.mention} has no members I can count, so a budget there would never apply. "
                    "Nothing changed."
                )
            )
        target_id, who = target.slack_id, team.mention
    decision = await ctx.db(
        access.can_manage_budget,
        workspace_id,
        viewer,
        kind="team" if team else target.kind,
        team_id=team.id if team else None,
        person_id=person.id if person else None,
    )
    if not decision.allowed:
        raise _refuse_manage(ctx, target, managed)
    today = ctx.runtime.today()

    def apply(conn):
        before, after = budgets.set_budget(
            conn,
            workspace_id=workspace_id,
            kind=target.kind,
            target_id=target_id,
            spec=spec,
            actor_user_id=caller.user_id,
            team=team,
        )
        [status] = budgets.statuses(conn, workspace_id=workspace_id, budgets=[(after, team)], today=today)
        return before, after, status

    before, after, status = await ctx.db(apply, write=True)
    status = replace(status, person_label=who)
    return views.build_budget_changed(
        before=before, after=after, status=status, who=who, tz=ctx.runtime.settings.tz
    )


async def _clear(ctx: CommandContext, args: list[str]) -> Message:
    if not args or len(args) > 2:
        raise CommandError("Say whose budget to clear, e.g. `/tokens budget clear @ana [vendor]`.", _usage())
    target = budgets.parse_target(args[0])
    if target is None:
        raise budgets.target_error(args[0])
    vendor = budgets.parse_vendor(args[1]) if len(args) == 2 else None
    caller = ctx.caller
    workspace_id = caller.workspace_id
    managed = await _managed_or_refuse(ctx, target)
    viewer, _ = await _viewer(ctx)
    person = team = None
    nothing = build_error(
        f"{target.mention} has no budget{f' for {vendor}' if vendor else ''}; nothing changed."
    )
    if target.kind == budgets.PERSON:
        person = await _person_target(ctx, target, create=False)
        if person is None:  # no person record: certainly no budget (a manager learns only that)
            if caller.is_admin:
                return nothing
            raise _refuse_manage(ctx, target, managed)
        target_id = str(person.id)
    elif target.kind == budgets.ORG:
        target_id = budgets.ORG
    else:
        team = await _team_target(ctx, target, fresh=False)
        target_id = target.slack_id
    decision = await ctx.db(
        access.can_manage_budget,
        workspace_id,
        viewer,
        kind="team" if target.kind in budgets.TEAM_KINDS else target.kind,
        team_id=team.id if team else None,
        person_id=person.id if person else None,
    )
    if not decision.allowed:
        raise _refuse_manage(ctx, target, managed)
    removed = await ctx.db(
        budgets.clear_budgets,
        workspace_id=workspace_id,
        kind=target.kind,
        target_id=target_id,
        vendor=vendor,
        actor_user_id=caller.user_id,
        team=team,
        write=True,
    )
    if not removed:
        return nothing
    return views.build_budget_cleared(removed, who=team.mention if team else target.mention)


async def _show(ctx: CommandContext, token: str | None) -> Message:
    caller = ctx.caller
    workspace_id = caller.workspace_id
    settings = ctx.runtime.settings
    target = budgets.parse_target(token) if token and token.lower() != "me" else None
    if token and token.lower() != "me" and target is None:
        raise budgets.target_error(token)
    if target is not None and target.kind == budgets.PERSON and target.slack_id == caller.user_id:
        target = None
    if not caller.is_admin and target is not None and target.kind != budgets.ORG:
        await refresh_managed_teams(ctx)
    viewer, me = await _viewer(ctx)
    today = ctx.runtime.today()
    min_size = settings.min_group_size
    if target is None:
        if me is None:
            return build_not_linked(admins_hint=admins_hint(ctx.runtime))

        def load_own(conn):
            return budgets.statuses_for_person(
                conn,
                workspace_id=workspace_id,
                viewer=viewer,
                person_id=me.id,
                today=today,
                min_group_size=min_size,
            )

        items = await ctx.db(load_own)
        return views.build_budget_show(
            items,
            title="Budgets that apply to you",
            empty="No budget applies to you. `/tokens me` shows your spend.",
            note="Only you can see this.",
        )
    refusal = build_error(
        f"Budgets of {target.mention} are visible to the people they apply to, their managers and admins "
        f"({admins_hint(ctx.runtime)})."
    )
    person = await _person_target(ctx, target, create=False) if target.kind == budgets.PERSON else None
    team = await _team_target(ctx, target, fresh=False) if target.kind in budgets.TEAM_KINDS else None
    if target.kind == budgets.PERSON and person is None:
        return refusal  # the same answer as "not allowed": it reveals nothing about them
    decision = await ctx.db(
        access.can_view_budget,
        workspace_id,
        viewer,
        kind="team" if target.kind in budgets.TEAM_KINDS else target.kind,
        team_id=team.id if team else None,
        person_id=person.id if person else None,
    )
    if not decision.allowed:
        return refusal

    def load(conn):
        if person is not None:
            rows = budgets.budgets_for_person(conn, workspace_id=workspace_id, person_id=person.id)
        else:
            rows = [
                (b, team)
                for b in budgets.budgets_of_target(
                    conn,
                    workspace_id=workspace_id,
                    kind=target.kind,
                    target_id=target.slack_id if target.kind != budgets.ORG else budgets.ORG,
                )
            ]
        items = budgets.visible_statuses(
            conn, workspace_id=workspace_id, viewer=viewer, budgets=rows, today=today, min_group_size=min_size
        )
        seen = sorted(
            {
                s.budget.person_id
                for s in items
                if s.budget.person_id is not None and s.visibility == budgets.FULL
            }
        )
        seen = [pid for pid in seen if pid != viewer.person_id]
        privacy.record_views(
            conn,
            workspace_id=workspace_id,
            actor_user_id=caller.user_id,
            action="view.budget",
            person_ids=seen,
            detail=f"budget show {target.kind}",
        )
        return items

    items = await ctx.db(load, write=True)
    if person is not None:
        title = f"Budgets that apply to {person.display_name or person.email or 'them'}"
        note = "Private to you; viewing someone's budgets is audited."
    else:
        title, note = f"Budgets of {_plain(target)}", "Private to you."
    return views.build_budget_show(
        items, title=title, empty=f"{team.mention if team else target.mention} has no budget.", note=note
    )


def _plain(target: TargetRef) -> str:
    """Header text is plain: no mention markup."""
    if target.kind == budgets.ORG:
        return "the org"
    prefix = "@" if target.kind == budgets.GROUP else "#"
    return prefix + target.name if target.name else target.slack_id


async def _list(ctx: CommandContext) -> Message:
    caller = ctx.caller
    workspace_id = caller.workspace_id
    managed = [] if caller.is_admin else await refresh_managed_teams(ctx)
    viewer, _ = await _viewer(ctx)
    today = ctx.runtime.today()
    min_size = ctx.runtime.settings.min_group_size

    def load(conn):
        rows = budgets.with_teams(
            conn, workspace_id=workspace_id, budgets=budgets.all_budgets(conn, workspace_id=workspace_id)
        )
        items = budgets.visible_statuses(
            conn, workspace_id=workspace_id, viewer=viewer, budgets=rows, today=today, min_group_size=min_size
        )
        seen = sorted(
            {
                s.budget.person_id
                for s in items
                if s.budget.person_id is not None and s.visibility == budgets.FULL
            }
        )
        privacy.record_views(
            conn,
            workspace_id=workspace_id,
            actor_user_id=caller.user_id,
            action="view.budget",
            person_ids=[pid for pid in seen if pid != viewer.person_id],
            detail="budget list",
        )
        return items

    items = await ctx.db(load, write=True)
    scope = (
        "every budget"
        if caller.is_admin
        else ("your teams' budgets and yours" if managed else "budgets that apply to you")
    )
    return views.build_budget_show(
        items,
        title="Budgets",
        empty="No budgets yet. Admins and team managers set one with `/tokens budget set @user $400/month`.",
        note=f"Showing {scope}. Private to you.",
    )


# -- requests for more -------------------------------------------------------------------------


async def send_dm(client: AsyncWebClient, user_id: str, reply: Message) -> tuple[str, str]:
    """conversations.open + chat.postMessage; returns (channel, ts) so the DM can be updated."""
    opened = await client.conversations_open(users=user_id)
    channel = opened["channel"]["id"]
    posted = await client.chat_postMessage(channel=channel, **reply.as_kwargs())
    return channel, posted.get("ts") or ""


def _slack_error(error: Exception) -> str:
    if isinstance(error, SlackApiError) and error.response is not None:
        return str(error.response.get("error") or "unknown")
    return type(error).__name__


async def _request(ctx: CommandContext, args: list[str]) -> Message:
    amount, reason = budgets.parse_request(args)
    caller = ctx.caller
    workspace_id = caller.workspace_id
    settings = ctx.runtime.settings
    person = await caller_person(ctx)
    if person is None:
        return build_not_linked(admins_hint=admins_hint(ctx.runtime))
    today = ctx.runtime.today()

    def load(conn):
        pending = budgets.pending_request(conn, workspace_id=workspace_id, person_id=person.id)
        rows = budgets.budgets_for_person(conn, workspace_id=workspace_id, person_id=person.id)
        items = budgets.statuses(conn, workspace_id=workspace_id, budgets=rows, today=today)
        target = budgets.request_budget(items)
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
        return pending, target, asked

    pending, target, asked = await ctx.db(load)
    if pending is not None:
        return build_error(
            f"You already asked for {views.usd(pending.amount_micros)} more (request #{pending.id}); "
            "wait for that decision before asking again. Nothing changed."
        )
    if target is None:
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
    shown = replace(target, person_label=f"<@{caller.user_id}>")
    dm = views.build_request_dm(request, requester=f"<@{caller.user_id}>", status=shown)
    refs, failures = [], []
    for user_id in asked:
        try:
            refs.append(await send_dm(ctx.client, user_id, dm))
        except Exception as error:  # one unreachable manager must not stop the others
            failures.append(f"<@{user_id}> ({_slack_error(error)})")
            log.warning("budget request %s: DM to %s failed: %s", request.id, user_id, _slack_error(error))
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
    return views.build_request_sent(request, status=shown, deciders=reached)


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
        runtime, people.find_by_slack_id, workspace_id=workspace_id, slack_user_id=user_id
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
        log.warning("budget request %s: could not DM the decision: %s", request.id, _slack_error(error))
    for channel, ts in result.request.notified:
        try:
            await client.chat_update(channel=channel, ts=ts, **closed.as_kwargs())
        except Exception as error:  # the clicked message is replaced through response_url anyway
            log.info("budget request %s: could not update %s: %s", request.id, channel, _slack_error(error))
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


HANDLERS = {"budget": handle_budget}
