"""Seat messages (pure): ``/tokens seats`` for admins with its Reclaim buttons, the holder's DM,
and the answer to a click. The four figures stay four: no total, no saving, no ROI."""

from __future__ import annotations

from datetime import date

from bot.db.models import Person
from bot.services.seats_ledger import ReclaimClaim, Seat, SeatLedger, VendorSeats
from bot.slack.blocks.common import (
    MAX_MESSAGE_BLOCKS,
    Block,
    Message,
    button,
    context,
    escape,
    header,
    message,
    section,
)
from bot.slack.blocks.format import vendor_name

RECLAIM_ACTION = "tokenwise_seat_reclaim"
SEP = "|"  # between the vendor and the actor in a button's value
MAX_LISTED = 30  # reassignable seats listed with a button, over all vendors


def reclaim_value(seat: Seat) -> str:
    return f"{seat.vendor}{SEP}{seat.actor}"


def parse_reclaim_value(value: str) -> tuple[str, str] | None:
    vendor, sep, actor = value.partition(SEP)
    return (vendor, actor) if sep and vendor and actor else None


def holder_label(seat: Seat, people: dict[int, Person]) -> str:
    person = people.get(seat.person_id) if seat.person_id is not None else None
    if person and person.slack_user_id:
        return f"<@{person.slack_user_id}>"
    if person and person.display_name:
        return escape(person.display_name)
    return f"`{escape(seat.actor)}`"


def figures_text(v: VendorSeats) -> str:
    renewal = f"{v.renewal:%b %-d, %Y}"
    text = (
        f"*{escape(vendor_name(v.vendor))}*"
        f"\n• Seats paid: *{v.paid}*"
        f"\n• Active in the last {v.period_days} days: *{v.active}*"
        f"\n• Reassignable now (unused {v.idle_days}+ days): *{len(v.reassignable)}*"
        f"\n• Reducible at the next renewal ({renewal}; unused {v.reduce_days}+ days): *{v.reducible}*"
    )
    if v.stale:
        text += f"\n_Seat list last stored for {v.as_of:%b %-d}: run a sync to refresh it._"
    return text


def _seat_line(seat: Seat, people: dict[int, Person], today: date) -> str:
    used = (
        f"last used {seat.last_active:%b %-d}"
        if seat.last_active
        else f"never used since {seat.since:%b %-d}"
    )
    tool = escape(vendor_name(seat.vendor))
    return f"{holder_label(seat, people)} · {tool} · {used} ({seat.idle_days(today)} days)"


def build_ledger(ledger: SeatLedger, today: date) -> Message:
    if not ledger.vendors:
        return message(
            "No seats stored.",
            [
                section(
                    "No seat-billed tool has stored seats yet "
                    "(GitHub Copilot's seat list, Cursor's paid team members)."
                )
            ],
        )
    blocks: list[Block] = [header("Seats")]
    for v in ledger.vendors:
        blocks.append(section(figures_text(v)))
    seats = [s for v in ledger.vendors for s in v.reassignable]
    room = MAX_MESSAGE_BLOCKS - len(blocks) - 3
    listed = seats[: min(MAX_LISTED, max(room, 0))]
    if listed:
        blocks.append(section("*Reassignable seats*: *Reclaim* asks the holder first, by DM, once."))
        for seat in listed:
            blocks.append(
                section(
                    _seat_line(seat, ledger.people, today),
                    accessory=button("Reclaim", RECLAIM_ACTION, reclaim_value(seat)),
                )
            )
        if len(seats) > len(listed):
            blocks.append(context(f"{len(seats) - len(listed)} more reassignable seats not listed."))
    blocks.append(
        context(
            "Four separate figures, never added up: a seat unused is not money lost. Use is what the tools "
            "report to Tokenwise (activity, or usage beyond the seat). Nothing is removed at the vendor."
        )
    )
    summary = "; ".join(
        f"{vendor_name(v.vendor)}: {v.paid} paid, {v.active} active, {len(v.reassignable)} reassignable, "
        f"{v.reducible} reducible at renewal"
        for v in ledger.vendors
    )
    return message(f"Seats. {summary}", blocks)


def build_holder_dm(claim: ReclaimClaim, admin_user_id: str) -> Message:
    seat = claim.seat
    assert seat is not None
    tool = vendor_name(seat.vendor)
    used = f"since {seat.last_active:%b %-d}" if seat.last_active else "since it was assigned"
    text = (
        f"Your {tool} seat has not been used {used} ({claim.idle} days). <@{admin_user_id}> would like to "
        f"give it to someone who needs one. If you still use {tool}, just reply to them; nothing has been "
        "removed."
    )
    return message(text, [section(text), context("Asked once by Tokenwise; you will not get this again.")])


ANSWERS = {
    "refused": "Only workspace admins can reclaim seats.",
    "asked": "The holder of this seat was already asked; nothing was sent again.",
    "no_seat": "That seat is not on the latest seat list any more.",
    "no_holder": "The holder of this seat has no Slack account linked, so nobody was asked. "
    "Ask them yourself, or link them with `/tokens link`.",
    "failed": "Slack did not deliver the DM; clicking Reclaim again tries once more.",
    "unknown": "That button is not one Tokenwise knows.",
}


def build_reclaim_answer(claim: ReclaimClaim, *, error: str = "") -> Message:
    if claim.status == "sent":
        who = f"<@{claim.holder.slack_user_id}>" if claim.holder else "the holder"
        text = f"Asked {who} by DM whether they still need the seat. Remove it at the vendor once they agree."
    elif claim.status == "in_use":
        text = f"That seat was used {claim.idle} days ago: it is not reassignable; nobody was asked."
    else:
        text = ANSWERS.get(claim.status, ANSWERS["unknown"])
        if error and claim.status == "failed":
            text += f" (Slack said: {escape(error)})"
    return message(text, [section(text)])
