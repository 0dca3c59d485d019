"""``/tokens link``: vendor identities to people (docs/privacy.md, "Identity claims").

- ``link <vendor> <id> @user [--move]`` (admins): link at once; an id that belongs to someone
  else is refused with its owner named, and moves (with its history) only with ``--move``.
- ``link github <login>`` (anyone, for themself): linked at once when GitHub's public profile of
  the login shows the claimer's own email; otherwise a pending claim that moves nothing.
- ``link pending``, ``link approve <n>``, ``link deny <n>`` (admins): decide pending claims,
  each exactly once.
"""

from __future__ import annotations

import asyncio
import logging

from bot.services import access, people, privacy
from bot.services.commands import CommandError, ParsedCommand, usage_line
from bot.services.mentions import mentioned_user
from bot.slack.blocks.common import Message, escape
from bot.slack.blocks.format import owner_mention
from bot.slack.blocks.reports import build_error, build_not_linked
from bot.slack.blocks.teams import build_done
from bot.slack.context import CommandContext, admins_hint, caller_person
from bot.sources import github_users
from bot.sources.base import SourceError

log = logging.getLogger(__name__)

MOVE = "--move"


async def _verify_github(ctx: CommandContext, login: str, email: str | None) -> tuple[str | None, str]:
    """(what verified the claim or None, why it stays pending)."""
    try:
        user = await asyncio.to_thread(github_users.get_user, ctx.runtime.settings, login)
    except SourceError as error:
        log.warning("link: could not verify a GitHub login: %s", error)
        return None, "GitHub could not be asked"
    if user is None:
        return None, "GitHub has no such login"
    if user.email is None:
        return None, "GitHub shows no public email for it"
    if not email or user.email != email.strip().lower():
        return None, "its public email on GitHub is not yours"
    return "github public email", ""


async def self_claim(ctx: CommandContext, login: str) -> Message:
    caller = ctx.caller
    person = await caller_person(ctx)
    if person is None:
        return build_not_linked(admins_hint=admins_hint(ctx.runtime))
    try:
        actor = people.actor_for("github", login)
    except people.LinkError as error:
        raise CommandError(str(error), usage_line("link")) from None
    login = actor.removeprefix("github:")
    if not github_users.LOGIN.match(login):
        raise CommandError(f"`{escape(login[:40])}` is not a GitHub login.", usage_line("link"))
    verified_by, why = await _verify_github(ctx, login, person.email)

    def claim(conn):
        outcome = people.claim_identity(
            conn,
            workspace_id=caller.workspace_id,
            actor=actor,
            person_id=person.id,
            claimer_user_id=caller.user_id,
            verified_by=verified_by,
            why_pending=why,
        )
        if outcome.status in (people.LINKED, people.PENDING):
            privacy.record(
                conn,
                workspace_id=caller.workspace_id,
                actor_user_id=caller.user_id,
                action="link.self" if outcome.status == people.LINKED else "link.claim",
                target=actor,
                detail=f"person={person.id}"
                + (f" verified={verified_by}" if outcome.status == people.LINKED else ""),
            )
        return outcome

    outcome = await ctx.db(claim, write=True)
    if outcome.status == people.LINKED:
        return build_done(
            f":link: GitHub's public profile of `{login}` shows your email, so `{actor}` is now linked to "
            f"you; {outcome.changed:,} stored rows re-attributed."
        )
    if outcome.status == people.ALREADY_YOURS:
        return build_done(f"`{actor}` is already linked to you; nothing changed.")
    if outcome.status == people.ALREADY_PENDING:
        return build_done(
            f"Your claim #{outcome.claim_id} of `{actor}` already waits for an admin; nothing changed."
        )
    reason = why or "it is linked to someone else"
    return build_done(
        f":hourglass_flowing_sand: I could not verify that `{actor}` is yours ({reason}). Your claim "
        f"#{outcome.claim_id} waits for an admin ({admins_hint(ctx.runtime)}); nothing is re-attributed "
        "until it is approved. To verify it yourself, make your work email public on your GitHub "
        "profile and claim again."
    )


async def admin_link(
    ctx: CommandContext, vendor: str, external: str, target_user: str, move: bool
) -> Message:
    caller = ctx.caller
    if not caller.is_admin:
        return build_error(
            f"Only admins link identities for others ({admins_hint(ctx.runtime)}). "
            "You can claim your own GitHub login with `/tokens link github <login>`."
        )
    try:
        actor = people.actor_for(vendor, external)
    except people.LinkError as error:
        raise CommandError(str(error), usage_line("link")) from None
    slack_user = await ctx.directory.user(ctx.client, target_user)
    person = await ctx.person(target_user, slack_user)
    if person is None:
        return build_error(
            f"<@{target_user}> has no email visible to me, so I cannot create their person record. "
            "Import them with `tokenwise people import`."
        )

    def apply(conn):
        before = people.identity_owner(conn, workspace_id=caller.workspace_id, actor=actor)
        changed = people.link_actor(
            conn,
            workspace_id=caller.workspace_id,
            actor=actor,
            person_id=person.id,
            origin="admin",
            move=move,
        )
        moved = before is not None and before != person.id
        privacy.record(
            conn,
            workspace_id=caller.workspace_id,
            actor_user_id=caller.user_id,
            action="link.move" if moved else "link.admin",
            target=actor,
            detail=f"person={person.id}" + (f" from=person:{before}" if moved else ""),
        )
        return changed

    try:
        changed = await ctx.db(apply, write=True)
    except people.IdentityOwned as owned:
        return build_error(
            f"`{actor}` already belongs to {owner_mention(owned.owner)}; nothing changed. To move it "
            f"and its history to <@{target_user}>, re-issue with `{MOVE}`: "
            f"`/tokens link {vendor} {external} <@{target_user}> {MOVE}`."
        )
    who = person.display_name or person.email or "them"
    return build_done(f":link: Linked `{actor}` to {escape(who)}; {changed:,} stored rows re-attributed.")


async def list_pending(ctx: CommandContext) -> Message:
    claims, total = await ctx.db(people.pending_claims, workspace_id=ctx.caller.workspace_id)
    if not claims:
        return build_done("No identity claims are waiting.")
    lines = [
        f"#{c.id}: <@{c.claimer_user_id}> claims `{escape(c.actor)}` "
        f"({escape(c.why_pending or 'unverified')}); "
        + (f"now linked to {owner_mention(c.owner)}" if c.owner else "unlinked")
        + f"; {c.stored_rows:,} stored usage rows"
        for c in claims
    ]
    more = f"\n…and {total - len(claims)} more (oldest shown first)." if total > len(claims) else ""
    text = (
        f"*Identity claims waiting: {total}*\n"
        + "\n".join(lines)
        + more
        + "\n`/tokens link approve <n>` links it (moving it and its history); `/tokens link deny <n>`."
    )
    return build_done(text)


async def decide(ctx: CommandContext, verb: str, number: str) -> Message:
    caller = ctx.caller
    if not number.lstrip("#").isdigit():
        raise CommandError(f"`{escape(number[:20])}` is not a claim number.", usage_line("link"))
    claim_id = int(number.lstrip("#"))
    approve = verb == "approve"

    def apply(conn):
        decision = people.decide_claim(
            conn,
            workspace_id=caller.workspace_id,
            claim_id=claim_id,
            approve=approve,
            decided_by=caller.user_id,
        )
        if decision is not None:
            privacy.record(
                conn,
                workspace_id=caller.workspace_id,
                actor_user_id=caller.user_id,
                action=f"link.{verb}",
                target=decision.actor,
                detail=f"claim={claim_id} person={decision.person_id}",
            )
        return decision

    decision = await ctx.db(apply, write=True)
    if decision is None:
        return build_error(f"Claim #{claim_id} is not waiting (unknown or already decided); nothing changed.")
    if decision.approved:
        return build_done(
            f"Approved claim #{claim_id}: `{decision.actor}` is linked to <@{decision.claimer_user_id}>; "
            f"{decision.changed:,} stored rows re-attributed."
        )
    return build_done(f"Denied claim #{claim_id}: `{decision.actor}` stays as it was.")


async def handle_link(ctx: CommandContext, command: ParsedCommand) -> Message:
    args = list(command.args)
    caller = ctx.caller
    verb = args[0].lower() if args else ""
    if verb in ("pending", "approve", "deny") and len(args) == (1 if verb == "pending" else 2):
        if not access.can_manage_roles(access.Viewer(caller.user_id, caller.is_admin, None)):
            return build_error(f"Only admins decide identity claims ({admins_hint(ctx.runtime)}).")
        return await list_pending(ctx) if verb == "pending" else await decide(ctx, verb, args[1])
    if len(args) == 2 and verb == "github":
        return await self_claim(ctx, args[1])
    move = bool(args) and args[-1].lower() == MOVE
    if move:
        args = args[:-1]
    if len(args) == 3 and (target_user := mentioned_user(args[2])):
        return await admin_link(ctx, args[0], args[1], target_user, move)
    raise CommandError("I need a vendor, an external id and a person.", usage_line("link"))
