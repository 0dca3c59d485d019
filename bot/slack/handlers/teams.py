"""``/tokens team`` and ``/tokens role``. Reading members from Slack is ``bot.slack.membership``;
``bot.jobs.team_refresh`` re-reads all stale teams on a schedule.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.domain.clock import utcnow
from bot.domain.periods import Period
from bot.services import access, aggregates, budgets, mentions, people, privacy, reports, teams
from bot.services.commands import CommandError, ParsedCommand, usage_line
from bot.services.mentions import mentioned_user
from bot.services.value.measures import value_measures
from bot.services.value.merged_prs import Whose
from bot.slack.blocks.budgets import with_budgets
from bot.slack.blocks.common import Message, escape
from bot.slack.blocks.format import local_time, team_label, team_mention, team_mention_of
from bot.slack.blocks.reconcile import with_unpriced
from bot.slack.blocks.reports import build_error, period_buttons, with_actions
from bot.slack.blocks.teams import build_done, build_roles, build_team
from bot.slack.blocks.value_lines import value_lines
from bot.slack.context import CommandContext, admins_hint, one_period
from bot.slack.membership import TeamAt, TeamReadError, max_age, read_members, refresh_team

log = logging.getLogger(__name__)


def _audit(conn, workspace_id: str, caller, action: str, target: str, detail: str) -> None:
    """One audit row for the caller's change to a team's reach (docs/privacy.md, "The audit log")."""
    what = {"action": action, "target": target, "detail": detail}
    privacy.record(conn, workspace_id=workspace_id, actor_user_id=caller.user_id, **what)


def team_target(token: str) -> tuple[str, str, str] | None:
    """``<!subteam^S1|@eng>`` or ``<#C1|eng>`` -> (kind, Slack id, name)."""
    found = mentions.parse_mention(token)
    if found is None or found.kind == mentions.USER:
        return None
    return found.kind, found.id, found.label


def _person_and_team(person_token: str, team_token: str, subcommand: str) -> tuple[str, tuple[str, str, str]]:
    """The Slack user and the team a command names, or the error that says which is unreadable."""
    user = mentioned_user(person_token)
    if user is None:
        raise CommandError(
            f"I could not read `{person_token[:50]}` as a person. Pick them from Slack's @ list.",
            usage_line(subcommand),
        )
    target = team_target(team_token)
    if target is None:
        raise _not_a_team(team_token)
    return user, target


def _not_a_team(token: str) -> CommandError:
    return CommandError(
        f"`{token[:50]}` is not a user group or a channel. Pick one from Slack's @ or # list.",
        usage_line("team"),
    )


def _person_label(labels: dict[int, tuple[str | None, str]], person_id: int) -> str:
    slack_id, name = labels.get(person_id, (None, f"person {person_id}"))
    return f"<@{slack_id}>" if slack_id else escape(name)


class RefusedView(Exception):
    """Raised inside a refresh's transaction when the caller may not see the team: rolls the
    refresh back, so a refused caller changes nothing."""

    def __init__(self, viewer: access.Viewer, decision: access.Decision, unapproved: int) -> None:
        super().__init__(decision.reason)
        self.viewer, self.decision, self.unapproved = viewer, decision, unapproved


def _refusal(
    ctx: CommandContext, team_mention: str, viewer: access.Viewer, decision: access.Decision, unapproved: int
) -> Message:
    """The one refusal of ``/tokens team`` (view and refresh alike). ``unapproved``: members of a
    team the caller manages that their grant does not reach (why a manager is refused)."""
    settings = ctx.runtime.settings
    if unapproved:
        return build_error(
            f"{unapproved} member(s) joined {team_mention} after you were made its manager. An admin "
            f"({admins_hint(ctx.runtime)}) approves them with `/tokens team approve @user {team_mention}`; "
            "until then you see the team as its members do."
        )
    if viewer.person_id is None and not (ctx.caller.slack and ctx.caller.slack.email):
        return build_error(
            "I cannot see your email in Slack, so I cannot tell which teams you belong to. "
            f"Ask an admin ({admins_hint(ctx.runtime)}) to link you, e.g. with `tokenwise people import`."
        )
    if decision.reason == "too_small":
        return build_error(
            f"{team_mention} has fewer than {settings.min_group_size} people I can count, so its "
            f"numbers are shown only to its managers and admins ({admins_hint(ctx.runtime)})."
        )
    return build_error(
        f"The numbers of {team_mention} are visible to {decision.who_can} ({admins_hint(ctx.runtime)})."
    )


def _withheld(ctx: CommandContext, team_mention: str, reason: str) -> Message:
    """A member's view of a team withheld by the aggregate rules (services/aggregates.py)."""
    settings = ctx.runtime.settings
    who = f"its managers and admins ({admins_hint(ctx.runtime)})"
    if reason == aggregates.NEAR_ORG:
        return build_error(
            f"{team_mention} holds nearly everyone who used AI tools in this period, so its totals would "
            f"be the org's, which are shown only to admins ({admins_hint(ctx.runtime)})."
        )
    if reason == aggregates.OVERLAPS_TEAM:
        return build_error(
            f"The numbers of {team_mention} for this period are withheld: another team differs from it "
            f"by fewer than {settings.min_group_size} active people, and comparing the two would show "
            f"their spend. They are visible to {who}."
        )
    return build_error(
        f"{team_mention} has fewer than {settings.min_group_size} people besides you who used AI tools "
        f"in this period, so its numbers are shown only to {who}."
    )


async def approve_member(ctx: CommandContext, args: list[str]) -> Message:
    """``/tokens team approve @user #channel`` (admins): bring a member who joined a channel
    team after its manager grant into every grant's reach (docs/privacy.md, "Manager scope")."""
    caller = ctx.caller
    workspace_id = caller.workspace_id
    if len(args) != 2:
        raise CommandError("`/tokens team approve` takes a person and a team.", usage_line("team"))
    if not access.can_manage_roles(access.Viewer(caller.user_id, caller.is_admin, None)):
        return build_error(f"Only admins approve who a manager may see ({admins_hint(ctx.runtime)}).")
    user, (kind, slack_id, _) = _person_and_team(args[0], args[1], "team")

    def approve(conn) -> tuple[bool, str]:
        team = teams.get_team(conn, workspace_id=workspace_id, kind=kind, slack_id=slack_id)
        person = people.resolve_slack_user(conn, workspace_id=workspace_id, slack_user_id=user)
        mention = team_mention(kind, slack_id)
        if team is None or not teams.is_member(
            conn, team_id=team.id, person_id=person.id if person else None
        ):
            return False, (
                f"<@{user}> is not a member of {mention} as I last read it "
                f"(`/tokens team refresh {mention}` re-reads it); nothing changed."
            )
        if not teams.team_managers(conn, workspace_id=workspace_id, team_id=team.id):
            return False, f"{mention} has no manager, so there is nothing to approve; nothing changed."
        added = teams.approve_member(
            conn, workspace_id=workspace_id, team_id=team.id, person_id=person.id, approved_by=caller.user_id
        )
        if not added:
            return True, f"<@{user}> is already within reach of every manager of {mention}; nothing changed."
        _audit(conn, workspace_id, caller, "scope.approve", f"person:{person.id}", f"team={team_label(team)}")
        return True, f"The managers of {mention} now see <@{user}>'s numbers and may set their budget."

    done, text = await ctx.db(approve, write=True)
    return build_done(text) if done else build_error(text)


async def handle_team(ctx: CommandContext, command: ParsedCommand) -> Message:
    args = list(command.args)
    if args and args[0].lower() == "approve":
        return await approve_member(ctx, args[1:])
    force = bool(args) and args[0].lower() == "refresh"
    if force:
        args = args[1:]
        if len(args) != 1:
            raise CommandError("`/tokens team refresh` takes one user group or channel.", usage_line("team"))
    if not args:
        raise CommandError(
            "Name a user group or a channel, e.g. `/tokens team @platform 30d`.", usage_line("team")
        )
    target = team_target(args[0])
    if target is None:
        raise _not_a_team(args[0])
    period = one_period(ctx, args[1:], "team")
    today = ctx.runtime.today()
    kind, slack_id, name = target
    workspace_id = ctx.caller.workspace_id
    settings = ctx.runtime.settings
    caller = ctx.caller

    def decide(conn, team_id: int) -> tuple[access.Viewer, access.Decision, int]:
        # The view's rule, and the only one: refreshing is allowed to whoever may see the team.
        person = people.resolve_slack_user(conn, workspace_id=workspace_id, slack_user_id=caller.user_id)
        viewer = access.Viewer(caller.user_id, caller.is_admin, person.id if person else None)
        decision = access.can_view_team(
            conn, workspace_id, viewer, team_id, min_group_size=settings.min_group_size
        )
        # Members a manager's grant does not reach: refused as a manager, and withheld as a member
        # too, since the manager can look up every other member one by one and subtract.
        unapproved = len(access.unapproved_members(conn, workspace_id, caller.user_id, team_id))
        return viewer, decision, unapproved

    team = await ctx.db(teams.get_team, workspace_id=workspace_id, kind=kind, slack_id=slack_id)
    notes: list[str] = []
    result = None
    decided = None
    if team is None or force or teams.is_stale(team, now=datetime.now(UTC), max_age=max_age(ctx.runtime)):
        try:
            at = TeamAt(workspace_id, kind, slack_id, name)
            known, new_members = await read_members(ctx.runtime, ctx.client, ctx.directory, at)

            def record_and_decide(conn):
                fresh, outcome = teams.record_refresh(
                    conn,
                    **at.named(),
                    known=known,
                    new_members=new_members,
                    today=ctx.runtime.today(),
                )
                decided = decide(conn, fresh.id)
                if not decided[1].allowed:
                    raise RefusedView(*decided)  # rolls the refresh back
                return fresh, outcome, decided

            team, result, decided = await ctx.db(record_and_decide, write=True)
        except TeamReadError as error:
            if team is None or force:
                return build_error(error.message)
            notes.append(
                f"I could not re-read the members ({error.message}); membership as of "
                f"{local_time(team.refreshed_at, settings.tz)}."
            )
        except RefusedView as refused:
            return _refusal(
                ctx, team_mention(kind, slack_id), refused.viewer, refused.decision, refused.unapproved
            )
    if decided is None:
        decided = await ctx.db(decide, team.id)
    viewer, decision, unapproved = decided
    if not decision.allowed or (unapproved and decision.reason == "member"):
        return _refusal(ctx, team_mention_of(team), viewer, decision, unapproved)
    if result is not None and result.not_counted:
        notes.append(
            f"{result.not_counted} member(s) have no email visible to me, so I cannot match them to "
            "usage; they are not counted."
        )
    if force:
        assert result is not None
        return build_done(
            f"Refreshed {team_mention_of(team)}: {result.members} members counted "
            f"({result.joined} joined, {result.left} left)." + (f" {notes[-1]}" if result.not_counted else "")
        )
    members = await ctx.db(teams.member_count, team_id=team.id)
    if members == 0:
        extra = f" {notes[-1]}" if notes else ""
        return build_error(
            f"{team_mention_of(team)} has no members I can count, so there is nothing to show.{extra}"
        )

    def member_check(conn, asked: Period) -> aggregates.AggregateCheck:
        return aggregates.check_member_view(
            conn,
            workspace_id=workspace_id,
            team_id=team.id,
            period=asked,
            caller_person_id=viewer.person_id,
            min_group_size=settings.min_group_size,
        )

    compare_previous = True

    def load(conn):
        nonlocal compare_previous
        if decision.reason == "member":  # managers and admins may see the members themselves
            check = member_check(conn, period)
            if not check.allowed:
                return check
            # The span the change is computed over, not the whole previous period: its amount is
            # what the reply would give away.
            comparison = reports.comparison_for(conn, workspace_id, period, today)
            compare_previous = member_check(conn, comparison.previous).allowed
        report = reports.team_report(
            conn, workspace_id=workspace_id, team_id=team.id, period=period, today=today
        )
        if decision.reason == "member":
            report = aggregates.fold_for_member(
                report, caller_person_id=viewer.person_id, min_group_size=settings.min_group_size
            )
        member_spend = None
        if decision.sees_individuals:
            spend = report.member_spend
            labels = privacy.people_labels(conn, person_ids=[pid for pid, _ in spend])
            member_spend = [(_person_label(labels, pid), cost) for pid, cost in spend]
            privacy.record_views(
                conn,
                workspace_id=workspace_id,
                actor_user_id=ctx.caller.user_id,
                action="view.team_member",
                person_ids=[pid for pid, _ in spend if pid != viewer.person_id],
                detail=f"team={team_label(team)} period={period.start}..{period.last_day}",
            )
        # Managers and admins see every unpriced model; members only one that enough people used.
        unpriced = reports.team_unpriced_models(
            conn,
            workspace_id=workspace_id,
            team_id=team.id,
            period=period,
            min_people=1 if decision.sees_individuals else settings.min_group_size,
        )
        # The team's own budgets, as much of each as this viewer may see (docs/budgets.md).
        kind = next(word for word, team_kind in budgets.TEAM_KINDS.items() if team_kind == team.kind)
        owned = budgets.visible_statuses(
            conn,
            workspace_id=workspace_id,
            viewer=viewer,
            budgets=[
                (b, team)
                for b in budgets.budgets_of_target(
                    conn, workspace_id=workspace_id, kind=kind, target_id=team.slack_id
                )
            ],
            today=today,
            min_group_size=settings.min_group_size,
        )
        delivery = value_measures(
            conn,
            Whose(workspace_id, team_id=team.id),
            period=period,
            fix_days=settings.github_delivery_fix_days,
            now=utcnow(),
        )
        return report, member_spend, unpriced, owned, delivery

    loaded = await ctx.db(load, write=decision.sees_individuals)
    if isinstance(loaded, aggregates.AggregateCheck):
        return _withheld(ctx, team_mention_of(team), loaded.reason)
    report, member_spend, unpriced, owned, delivery = loaded
    # A share from fewer than the minimum group of authors is withheld; a member's own PRs do not
    # count towards it (docs/privacy.md, "Value lines").
    exclude = viewer.person_id if decision.reason == "member" else None
    reply = build_team(
        report,
        team=team,
        members=members,
        models=report.models,
        member_spend=member_spend,
        notes=notes,
        compare_previous=compare_previous,
        delivery=value_lines(delivery, min_group=settings.min_group_size, exclude=exclude),
    )
    reply = with_budgets(with_unpriced(reply, unpriced), owned)
    return with_actions(reply, period_buttons(f"team {team_mention_of(team)}"))


async def handle_role(ctx: CommandContext, command: ParsedCommand) -> Message:
    args = command.args
    caller = ctx.caller
    workspace_id = caller.workspace_id
    if not args or args[0].lower() == "list":
        if len(args) > 1:
            raise CommandError("`/tokens role list` takes no arguments.", usage_line("role"))
        grants = await ctx.db(
            teams.list_grants,
            workspace_id=workspace_id,
            slack_user_id=None if caller.is_admin else caller.user_id,
        )
        return build_roles(grants, admin_view=caller.is_admin)
    verb = args[0].lower()
    if verb not in ("add", "remove") or len(args) != 4:
        raise CommandError("I need add or remove, a role, a person and a team.", usage_line("role"))
    if not access.can_manage_roles(access.Viewer(caller.user_id, caller.is_admin, None)):
        return build_error(f"Only admins grant and remove roles ({admins_hint(ctx.runtime)}).")
    role = args[1].lower()
    if role not in teams.ROLES:
        raise CommandError(f"`{args[1][:30]}` is not a role; the role is `manager`.", usage_line("role"))
    user, (kind, slack_id, name) = _person_and_team(args[2], args[3], "role")
    if verb == "remove":
        team = await ctx.db(teams.get_team, workspace_id=workspace_id, kind=kind, slack_id=slack_id)

        def revoke(conn):
            removed = team is not None and teams.revoke_role(
                conn, workspace_id=workspace_id, role=role, slack_user_id=user, team_id=team.id
            )
            if removed:
                _audit(conn, workspace_id, caller, "role.remove", f"team:{team.id}", f"{role} {user}")
            return removed

        if not await ctx.db(revoke, write=True):
            mention = team_mention(kind, slack_id)
            return build_error(f"<@{user}> is not a {role} of {mention}; nothing changed.")
        return build_done(f"<@{user}> no longer manages {team_mention_of(team)}.")
    slack_user = await ctx.directory.user(ctx.client, user)
    if slack_user is None:
        return build_error(f"I cannot find <@{user}> in this workspace; nothing changed.")
    if slack_user.deleted or slack_user.is_bot:
        return build_error(f"<@{user}> is a deactivated account or a bot and cannot manage a team.")
    at = TeamAt(workspace_id, kind, slack_id, name)
    team = await ctx.db(teams.get_team, **at.key())
    note = ""
    # The grant reaches the members it is made over (docs/privacy.md, "Manager scope"): read
    # them now unless just read.
    if team is None or teams.is_stale(team, now=datetime.now(UTC), max_age=max_age(ctx.runtime)):
        try:
            team, _ = await refresh_team(ctx.runtime, ctx.client, ctx.directory, at)
        except TeamReadError as error:
            if team is not None and team.refreshed_at is not None:
                note = f" Note: {error.message} The grant covers its members as last read."
            else:
                note = f" Note: {error.message} Until I can read its members, they see no one."
            team = team or await ctx.db(teams.ensure_team, **at.named(), write=True)

    def grant(conn) -> tuple[bool, int]:
        new = teams.grant_role(
            conn,
            workspace_id=workspace_id,
            role=role,
            slack_user_id=user,
            team_id=team.id,
            granted_by=caller.user_id,
        )
        # Granting again over the team as it is now covers the members who joined since.
        covered = (
            0
            if new
            else teams.cover_members(
                conn, workspace_id=workspace_id, slack_user_id=user, team_id=team.id, by=caller.user_id
            )
        )
        if new or covered:
            detail = f"{role} {user}" + (f" +{covered} member(s)" if covered else "")
            _audit(conn, workspace_id, caller, "role.add", f"team:{team.id}", detail)
        return new, covered

    new, covered = await ctx.db(grant, write=True)
    if not new:
        if covered:
            return build_done(
                f"<@{user}> already manages {team_mention_of(team)}; the grant now also reaches the "
                f"{covered} member(s) who joined since.{note}"
            )
        return build_done(f"<@{user}> already manages {team_mention_of(team)}; nothing changed.{note}")
    return build_done(
        f"<@{user}> now manages {team_mention_of(team)} and can see its members' numbers one by one.{note}"
    )
