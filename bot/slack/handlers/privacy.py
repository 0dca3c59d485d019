"""``/tokens privacy``, ``audit``, ``forget`` and ``export``, and the forget confirmation button."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.services import access, people, privacy, teams
from bot.services.commands import CommandError, ParsedCommand, usage_line
from bot.services.mentions import mentioned_user
from bot.services.runtime import Runtime
from bot.slack.background import in_background
from bot.slack.blocks.common import Message, message, section
from bot.slack.blocks.format import team_mention_of
from bot.slack.blocks.privacy import (
    FORGET_CANCEL,
    FORGET_CONFIRM,
    build_audit,
    build_export_sent,
    build_forget_prompt,
    build_forgotten,
    build_privacy_status,
)
from bot.slack.blocks.reports import build_error, build_not_linked
from bot.slack.context import (
    CommandContext,
    admins_hint,
    authorized_workspace,
    caller_person,
    one_period,
    run_db,
)
from bot.slack.directory import SlackDirectory

log = logging.getLogger(__name__)


async def handle_privacy(ctx: CommandContext, command: ParsedCommand) -> Message:
    args = [a.lower() for a in command.args]
    if args and (len(args) != 2 or args[0] != "names" or args[1] not in ("on", "off")):
        raise CommandError("Say `names on` or `names off`.", usage_line("privacy"))
    person = await caller_person(ctx)
    if person is None:
        return build_not_linked(admins_hint=admins_hint(ctx.runtime))
    min_size = ctx.runtime.settings.min_group_size
    if not args:
        return build_privacy_status(show_name=person.show_name_in_channels, min_group_size=min_size)
    show = args[1] == "on"
    workspace_id = ctx.caller.workspace_id

    def apply(conn):
        privacy.set_show_name(conn, person_id=person.id, show=show)
        privacy.record(
            conn,
            workspace_id=workspace_id,
            actor_user_id=ctx.caller.user_id,
            action="privacy.names",
            target=privacy.person_target(person.id),
            detail="on" if show else "off",
        )

    await ctx.db(apply, write=True)
    return build_privacy_status(show_name=show, min_group_size=min_size, changed=True)


def _audit_args(args: list[str]) -> tuple[list[str], int]:
    """(who: [] or ["me"] or ["<@U…>"], page) from ``[me | @user] [page N]``."""
    page = 1
    if len(args) >= 2 and args[-2].lower() == "page":
        number = args[-1]
        if not number.isdigit() or not 1 <= int(number) <= 100_000:
            what = f"`{number[:20]}` is not a page number: say e.g. `page 2`."
            raise CommandError(what, usage_line("audit"))
        page, args = int(number), args[:-2]
    if len(args) > 1 or (args and args[0].lower() == "page"):
        raise CommandError("`/tokens audit` takes `me` or one person, then `page N`.", usage_line("audit"))
    return args, page


async def handle_audit(ctx: CommandContext, command: ParsedCommand) -> Message:
    args, page = _audit_args(command.args)
    caller = ctx.caller
    workspace_id = caller.workspace_id
    tz = ctx.runtime.settings.tz
    viewer = access.Viewer(caller.user_id, caller.is_admin, None)
    own = bool(args) and (args[0].lower() == "me" or mentioned_user(args[0]) == caller.user_id)
    if not access.can_read_audit(viewer, own=own):
        return build_error(
            f"The audit log is for admins ({admins_hint(ctx.runtime)}). "
            "`/tokens audit me` shows who looked at your numbers."
        )
    if own:
        person = await caller_person(ctx)
        if person is None:
            return build_not_linked(admins_hint=admins_hint(ctx.runtime))

        def load_own(conn):
            found = privacy.audit_page(
                conn,
                workspace_id=workspace_id,
                person_id=person.id,
                views_only=True,
                exclude_actor=caller.user_id,  # in SQL, so pages and the count leave nothing out
                page=page,
            )
            return found, privacy.people_labels(conn, person_ids=[person.id, *found.person_ids()])

        found, labels = await ctx.db(load_own)
        return build_audit(
            found,
            title="Who looked at your numbers",
            labels=labels,
            tz=tz,
            empty="Nobody but you has looked at your numbers.",
            command="audit me",
        )
    user = mentioned_user(args[0]) if args else None
    if args and user is None:
        raise CommandError(f"I could not read `{args[0][:50]}` as a person.", usage_line("audit"))
    person = None
    if user is not None:
        person = await ctx.db(people.resolve_slack_user, workspace_id=workspace_id, slack_user_id=user)

    def load(conn):
        found = privacy.audit_page(
            conn, workspace_id=workspace_id, person_id=person.id if person else None, user_id=user, page=page
        )
        targets = [e.target.partition(":") for e in found.entries]
        person_ids = found.person_ids()
        team_ids = {int(n) for kind, _, n in targets if kind == "team" and n.isdigit()}
        team_labels = {
            t.id: team_mention_of(t)
            for t in teams.all_teams(conn, workspace_id=workspace_id)
            if t.id in team_ids
        }
        return found, privacy.people_labels(conn, person_ids=person_ids), team_labels

    found, labels, team_labels = await ctx.db(load)
    if user is None:
        return build_audit(
            found,
            title="Audit log",
            labels=labels,
            teams=team_labels,
            tz=tz,
            empty="Nothing recorded yet.",
            command="audit",
        )
    return build_audit(
        found,
        title="Audit log for one person",
        labels=labels,
        teams=team_labels,
        tz=tz,
        empty=f"Nothing recorded about or by <@{user}>.",
        about=f"Views of <@{user}>'s numbers and what <@{user}> did.",
        command=f"audit <@{user}>",
    )


async def handle_forget(ctx: CommandContext, command: ParsedCommand) -> Message:
    if [a.lower() for a in command.args] != ["me"]:
        raise CommandError(
            "You can only ask me to forget you: `/tokens forget me`. Admins forget others with "
            "`tokenwise people forget <email>`.",
            usage_line("forget"),
        )
    person = await caller_person(ctx)  # matches by email too: usage may predate any /tokens use
    if person is None:
        return message(
            "I hold nothing linked to your Slack account, so there is nothing to forget.",
            [section("I hold nothing linked to your Slack account, so there is nothing to forget.")],
        )
    return build_forget_prompt(person.id)


async def handle_export(ctx: CommandContext, command: ParsedCommand) -> Message:
    caller = ctx.caller
    if not access.can_export(access.Viewer(caller.user_id, caller.is_admin, None)):
        return build_error(f"Exports are for admins ({admins_hint(ctx.runtime)}).")
    period = one_period(ctx, command.args, "export")
    workspace_id = caller.workspace_id

    def load(conn):
        return privacy.export_csv(conn, workspace_id=workspace_id, period=period)

    content, rows = await ctx.db(load)
    filename = f"tokenwise-usage-{period.start}-{period.last_day}.csv"
    try:
        opened = await ctx.client.conversations_open(users=caller.user_id)
        channel = opened["channel"]["id"]
        await ctx.client.files_upload_v2(
            channel=channel,
            content=content,
            filename=filename,
            title=f"Tokenwise usage {period.label}",
            initial_comment=f"Per-person daily usage and value, {period.label} ({rows:,} rows).",
        )
    except SlackApiError as error:
        code = error.response.get("error") if error.response is not None else "unknown"
        log.warning("export upload failed: %s", code)
        return build_error(f"I could not send you the file (`{code}`). Nothing was exported.")
    await ctx.db(
        privacy.record,
        workspace_id=workspace_id,
        actor_user_id=caller.user_id,
        action="export.usage",
        target="org",
        detail=f"period={period.start}..{period.last_day} rows={rows}",
        write=True,
    )
    return build_export_sent(rows=rows, period_label=period.label)


def register(app: AsyncApp, runtime: Runtime, directory: SlackDirectory) -> None:
    async def forget(body: dict, respond: AsyncRespond, workspace_id: str) -> None:
        user_id = (body.get("user") or {}).get("id", "")
        value = ((body.get("actions") or [{}])[0]).get("value", "")
        person = await run_db(
            runtime, people.resolve_slack_user, workspace_id=workspace_id, slack_user_id=user_id
        )
        # Only ever the clicker's own record, and only the one the prompt was shown for.
        if person is None or str(person.id) != value:
            text = "Nothing to forget: this prompt is out of date. Run `/tokens forget me` again."
            await respond(text=text, blocks=[section(text)], replace_original=True, response_type="ephemeral")
            return
        result = await run_db(
            runtime,
            privacy.forget_person,
            workspace_id=workspace_id,
            person_id=person.id,
            actor_user_id=user_id,
            write=True,
        )
        directory.forget(user_id)
        reply = build_forgotten(result)
        await respond(**reply.as_kwargs(), replace_original=True, response_type="ephemeral")

    async def on_forget_confirm(
        ack: AsyncAck, body: dict, respond: AsyncRespond, context: AsyncBoltContext
    ) -> None:
        await ack()
        workspace_id = authorized_workspace(runtime, context)
        # Anonymising a person's history can take a while: after Slack has its response.
        in_background(forget(body, respond, workspace_id), "forget confirmation")

    async def on_forget_cancel(ack: AsyncAck, respond: AsyncRespond) -> None:
        await ack()
        text = "Cancelled: nothing was forgotten."
        in_background(
            respond(text=text, blocks=[section(text)], replace_original=True, response_type="ephemeral"),
            "forget cancellation",
        )

    app.action(FORGET_CONFIRM)(on_forget_confirm)
    app.action(FORGET_CANCEL)(on_forget_cancel)
