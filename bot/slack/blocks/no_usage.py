"""Why there is no AI spend to show, and the next step (``services.no_usage``). Pure: the same
blocks in ``/tokens me`` and on the App Home."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.services.no_usage import NO_EMAIL, NO_MATCH, NONE_IN_PERIOD, NoUsage
from bot.slack.blocks.common import Block, Message, clip, context, escape, message, section
from bot.slack.blocks.format import local_time, vendor_name

SELF_CLAIM = "`/tokens link github <login>`"
ADMIN_LINK = "`/tokens link <vendor> <id> @you`"


def sources_text(explained: NoUsage, tz: ZoneInfo) -> str:
    if not explained.sources:
        return "No vendor source is connected yet: an admin adds one with `/tokens sources`."
    parts = []
    for source in explained.sources:
        state = "ok" if source.healthy else "failing"
        synced = local_time(source.last_success_at, tz)
        parts.append(f"{escape(vendor_name(source.name))} ({state}, last sync {synced})")
    return "Connected sources: " + ", ".join(parts) + "."


def why_text(explained: NoUsage, *, period_label: str) -> str:
    """The reason, said plainly: which email was matched and what came of it."""
    if explained.reason == NO_EMAIL:
        return (
            "*Why $0.00:* I have no AI usage linked to you: Slack shows me no email for you (a guest "
            "account, or the email is hidden), so I cannot match you to a vendor account."
        )
    email = f"`{escape(explained.email)}`" if explained.email else ""
    if explained.reason == NO_MATCH:
        if not email:  # linked by Slack id, with no email on record to match vendor accounts by
            linked = (
                "the vendor accounts linked to you (below) have no usage recorded yet"
                if explained.identities
                else "no vendor account in the connected sources is linked to you yet"
            )
            return (
                "*Why $0.00:* your Slack account is linked to you, but I have no email on record for "
                f"you to match vendor accounts by, and {linked}, so I have no AI usage to show."
            )
        return (
            f"*Why $0.00:* I matched your Slack email {email}, but no vendor account in the connected "
            "sources uses it, so I have no AI usage linked to you yet."
        )
    last = f" Your last recorded usage was on {explained.last_day:%b %-d, %Y}." if explained.last_day else ""
    linked = f"your accounts are linked{f' ({email})' if email else ''}, but nothing was recorded."
    return f"*No usage in {period_label}:* {linked}{last}"


def next_step_text(explained: NoUsage, *, admins_hint: str) -> str:
    if explained.reason == NONE_IN_PERIOD:
        return ""  # linked: nothing to fix
    if explained.reason == NO_EMAIL:
        return f"*Next step:* ask an admin ({admins_hint}) to link your vendor accounts: {ADMIN_LINK}."
    return (
        "*Next step:* if you use AI tools under another email or id, ask an admin "
        f"({admins_hint}) to link it: {ADMIN_LINK}; for GitHub, claim your login yourself: {SELF_CLAIM}."
    )


def no_usage_blocks(explained: NoUsage, *, admins_hint: str, tz: ZoneInfo, period_label: str) -> list[Block]:
    lines = [why_text(explained, period_label=period_label)]
    step = next_step_text(explained, admins_hint=admins_hint)
    if step:
        lines.append(step)
    if explained.failing:
        names = ", ".join(escape(vendor_name(name)) for name in explained.failing)
        lines.append(f"{names} failed to sync lately, so recent numbers may be missing.")
    blocks = [section(clip(":mag: " + "\n".join(lines), 3000))]
    notes = [clip(sources_text(explained, tz), 3000)]
    if explained.identities:
        shown = ", ".join(f"`{escape(actor[:80])}`" for actor in explained.identities)
        notes.append(clip(f"Identities linked to you: {shown}", 3000))
    blocks.append(context(*notes))
    return blocks


def build_no_usage(explained: NoUsage, *, admins_hint: str, tz: ZoneInfo, period_label: str) -> Message:
    """The ``/tokens me`` answer when no usage was ever linked to the caller."""
    why = why_text(explained, period_label=period_label).replace("*", "")
    blocks = no_usage_blocks(explained, admins_hint=admins_hint, tz=tz, period_label=period_label)
    return message(f"{why} {next_step_text(explained, admins_hint=admins_hint).replace('*', '')}", blocks)
