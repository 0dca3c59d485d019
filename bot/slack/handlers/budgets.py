"""``/tokens budget``: set, show, list and clear budgets. Asking for more and the Approve / Deny
buttons are ``budget_requests``; the scheduled check that sends threshold alerts, early warnings
and floor nudges is ``bot.jobs.budget_alerts``.

Rules live in ``bot.services.budgets`` (and who may do what in ``bot.services.access``); this
module reads Slack (mentions, members) and writes to it (replies and DMs).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.db.models import Person, Team
from bot.services import access, budgets, people, privacy, teams
from bot.services.budgets import BudgetError, TargetRef, authorization
from bot.services.budgets.authorization import Refused
from bot.services.commands import CommandError, ParsedCommand, usage_line
from bot.slack.blocks import budgets as views
from bot.slack.blocks.common import Message
from bot.slack.blocks.format import team_mention_of
from bot.slack.blocks.reports import build_error, build_not_linked
from bot.slack.context import CommandContext, admins_hint, caller_person
from bot.slack.handlers.budget_requests import request_more
from bot.slack.membership import TeamAt, TeamReadError, refresh_managed_teams, refresh_team

log = logging.getLogger(__name__)

VERBS = ("set", "show", "list", "clear", "request")


def _usage() -> str:
    return usage_line("budget")


def _error(error: BudgetError) -> CommandError:
    return CommandError(str(error), _usage())


async def _viewer(ctx: CommandContext) -> tuple[access.Viewer, Person | None]:
    person = await caller_person(ctx)
    viewer = authorization.viewer(
        ctx.caller.user_id, is_admin=ctx.caller.is_admin, person_id=person.id if person else None
    )
    return viewer, person


async def _ask(
    ctx: CommandContext,
    question,
    viewer: access.Viewer,
    target: TargetRef,
    team: Team | None,
    person: Person | None,
) -> access.Decision:
    """One of ``services.access``'s budget questions about a target, for this caller."""
    return await ctx.db(
        question,
        ctx.caller.workspace_id,
        viewer,
        kind="team" if target.kind in budgets.TEAM_KINDS else target.kind,
        team_id=team.id if team else None,
        person_id=person.id if person else None,
    )


# -- targets -----------------------------------------------------------------------------------


class Refusal(Exception):
    """A precise reason the command cannot go on; becomes an ephemeral error, nothing changed."""

    def __init__(self, reply: Message) -> None:
        super().__init__(reply.text)
        self.reply = reply


async def _person_target(ctx: CommandContext, target: TargetRef, *, create: bool) -> Person | None:
    """The person named, through the one resolution (``context.resolve_person``). Without
    ``create`` only a person already linked to the Slack id (a read: nothing is learnt from
    Slack); with it, a live human Slack knows is matched by email, else a precise refusal."""
    workspace_id = ctx.caller.workspace_id
    person = await ctx.db(people.resolve_slack_user, workspace_id=workspace_id, slack_user_id=target.slack_id)
    if person is not None or not create:
        return person
    who = views.target_mention(target)
    slack_user = await ctx.directory.user(ctx.client, target.slack_id)
    found = authorization.new_person(
        found=slack_user is not None,
        deleted=bool(slack_user and slack_user.deleted),
        is_bot=bool(slack_user and slack_user.is_bot),
    )
    if found.refused == Refused.UNKNOWN_USER:
        raise Refusal(build_error(f"I cannot find {who} in this workspace; nothing changed."))
    if found.refused == Refused.INACTIVE_USER:
        raise Refusal(build_error(f"{who} is a deactivated account or a bot; nothing changed."))
    person = await ctx.person(target.slack_id, slack_user)
    if not authorization.matched_person(person is not None).allowed:
        raise Refusal(
            build_error(
                f"{who} has no email visible to me, so I cannot tie a budget to their usage. Nothing changed."
            )
        )
    return person


async def _team_target(ctx: CommandContext, target: TargetRef, *, fresh: bool) -> Team | None:
    """The team as stored; with ``fresh``, its members re-read from Slack when stale or unknown."""
    workspace_id = ctx.caller.workspace_id
    kind = budgets.TEAM_KINDS[target.kind]
    team = await ctx.db(teams.get_team, workspace_id=workspace_id, kind=kind, slack_id=target.slack_id)
    if not fresh:
        return team
    max_age = timedelta(minutes=ctx.runtime.settings.team_refresh_minutes)
    if authorization.team_needs_reading(team, now=datetime.now(UTC), max_age=max_age):
        try:
            team, _ = await refresh_team(
                ctx.runtime,
                ctx.client,
                ctx.directory,
                TeamAt(workspace_id, kind, target.slack_id, target.name),
            )
        except TeamReadError as error:
            if not authorization.unreadable_team(team).allowed:
                raise Refusal(build_error(f"{error.message} Nothing changed.")) from None
            log.info("budget: keeping the stored members of %s (%s)", target.slack_id, error.code)
    return team


async def _managed_or_refuse(ctx: CommandContext, target: TargetRef) -> list[Team]:
    """Admins change any budget; anyone else only budgets within teams they manage (never the
    org's). Returns the caller's managed teams (empty for admins)."""
    managed = [] if ctx.caller.is_admin else await refresh_managed_teams(ctx)
    if not authorization.may_manage(target, is_admin=ctx.caller.is_admin, managed=managed).allowed:
        raise _refuse_manage(ctx, target, managed)
    return managed


def _refuse_manage(ctx: CommandContext, target: TargetRef, managed: list[Team]) -> Refusal:
    hint = admins_hint(ctx.runtime)
    refused = authorization.manage_refusal(target, managed).refused
    if refused == Refused.ORG_BY_ADMINS:
        return Refusal(build_error(f"The org budget is set by admins ({hint}). Nothing changed."))
    yours = ", ".join(team_mention_of(t) for t in managed[:5])
    named = views.target_mention(target)
    if refused == Refused.MANAGES_NO_TEAM:
        return Refusal(
            build_error(
                f"Budgets are set by {access.BUDGET_WHO_CAN_SET}; you manage no team ({hint} can make you "
                "a manager). Nothing changed."
            )
        )
    if refused == Refused.PERSON_OUTSIDE_TEAMS:
        text = (
            f"{named} is not a member of a team you manage ({yours}), or joined a channel "
            "after you were made its manager and is not yet approved by an admin"
        )
    else:
        text = f"You do not manage {named} (you manage {yours})"
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
            return await request_more(ctx, args[1:])
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
    elif target.kind == budgets.ORG:
        target_id = budgets.ORG
    else:
        team = await _team_target(ctx, target, fresh=True)
        members = await ctx.db(teams.member_count, team_id=team.id) if team else 0
        if team is None or members == 0:
            raise Refusal(
                build_error(
                    f"{views.target_mention(target)} has no members I can count, so a budget there would "
                    "never apply. "
                    "Nothing changed."
                )
            )
        target_id = target.slack_id
    decision = await _ask(ctx, access.can_manage_budget, viewer, target, team, person)
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
    if person is not None:  # "they" about someone else, "you" about yourself
        status = replace(status, person_slack_id=target.slack_id, own=person.id == viewer.person_id)
    return views.build_budget_changed(before=before, after=after, status=status, tz=ctx.runtime.settings.tz)


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
        f"{views.target_mention(target)} has no budget{f' for {vendor}' if vendor else ''}; nothing changed."
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
    decision = await _ask(ctx, access.can_manage_budget, viewer, target, team, person)
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
    return views.build_budget_cleared(removed, target=target)


def _shown(conn, workspace_id: str, viewer: access.Viewer, rows, today, min_size: int, *, detail: str):
    """The statuses of ``rows`` as ``viewer`` may see them; each other person shown in full is
    audited (they see who looked in `/tokens audit me`)."""
    items = budgets.visible_statuses(
        conn, workspace_id=workspace_id, viewer=viewer, budgets=rows, today=today, min_group_size=min_size
    )
    seen = sorted(
        {s.budget.person_id for s in items if s.budget.person_id is not None and s.visibility == budgets.FULL}
    )
    privacy.record_views(
        conn,
        workspace_id=workspace_id,
        actor_user_id=viewer.user_id,
        action="view.budget",
        person_ids=[pid for pid in seen if pid != viewer.person_id],
        detail=detail,
    )
    return items


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
        f"Budgets of {views.target_mention(target)} are visible to the people they apply to, their managers "
        f"and admins "
        f"({admins_hint(ctx.runtime)})."
    )
    person = await _person_target(ctx, target, create=False) if target.kind == budgets.PERSON else None
    team = await _team_target(ctx, target, fresh=False) if target.kind in budgets.TEAM_KINDS else None
    if target.kind == budgets.PERSON and person is None:
        return refusal  # the same answer as "not allowed": it reveals nothing about them
    decision = await _ask(ctx, access.can_view_budget, viewer, target, team, person)
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
        return _shown(conn, workspace_id, viewer, rows, today, min_size, detail=f"budget show {target.kind}")

    items = await ctx.db(load, write=True)
    if person is not None:
        title = f"Budgets that apply to {person.display_name or person.email or 'them'}"
        note = "Private to you; viewing someone's budgets is audited."
    else:
        title, note = f"Budgets of {views.target_plain(target)}", "Private to you."
    return views.build_budget_show(
        items, title=title, empty=f"{views.target_mention(target)} has no budget.", note=note
    )


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
        return _shown(conn, workspace_id, viewer, rows, today, min_size, detail="budget list")

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
