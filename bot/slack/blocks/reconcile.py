"""Block Kit for reconciliation (``/tokens reconcile``, the summary in ``/tokens status``) and the
one-line note on unpriced models in the spend views. Pure functions of service results."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from bot.domain.records import TOTAL_BILLED, TOTAL_BILLED_AND_ESTIMATED
from bot.services.reconcile import Reconciliation, SourceFigures, TotalCheck, UnpricedModel
from bot.slack.blocks.common import Block, Message, context, divider, escape, header, message, section
from bot.slack.blocks.format import count, period_text, usd

WHAT = {TOTAL_BILLED: "billed", TOTAL_BILLED_AND_ESTIMATED: "billed + estimated"}
NO_VENDOR_TOTAL = "no vendor total reported"
TOLERANCE_NOTE = "A difference above 1% of the vendor's figure is flagged :warning:."
MAX_UNPRICED_NAMES = 5


def percent(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:+}%"


def _signed_usd(micros: int) -> str:
    return ("+" if micros > 0 else "") + usd(micros)


def check_line(check: TotalCheck) -> str:
    icon = ":warning:" if check.mismatched else ":white_check_mark:"
    span = f"{check.start:%b %-d} – {check.end - timedelta(days=1):%b %-d}"
    return (
        f"{icon} {WHAT.get(check.what, escape(check.what))} {span}: vendor *{usd(check.vendor_micros)}* · "
        f"Tokenwise *{usd(check.attributed_micros)}* · difference {_signed_usd(check.difference_micros)} "
        f"({percent(check.difference_percent)})"
    )


def _source_text(figures: SourceFigures) -> str:
    lines = [
        f"*{escape(figures.source)}*: billed {usd(figures.billed_micros)} · estimated "
        f"{usd(figures.estimated_micros)} · unattributed {usd(figures.unattributed_micros)} · unpriced "
        f"{count(figures.unpriced_tokens)} tokens"
    ]
    lines += [check_line(check) for check in figures.checks] or [f"_{NO_VENDOR_TOTAL}_"]
    return "\n".join(lines)


def unpriced_text(models: tuple[UnpricedModel, ...] | list[UnpricedModel]) -> str:
    """``Unpriced models: gpt-9 (1,200 tokens, openai), ...``."""
    shown = ", ".join(
        f"{escape(m.model or '(no model)')} ({count(m.tokens)} tokens, {escape(m.source)})"
        for m in models[:MAX_UNPRICED_NAMES]
    )
    more = f" and {len(models) - MAX_UNPRICED_NAMES} more" if len(models) > MAX_UNPRICED_NAMES else ""
    return f"Unpriced models: {shown}{more}"


def build_reconcile(rec: Reconciliation) -> Message:
    """Per source: what the vendor bills against what Tokenwise attributes, with the gaps."""
    blocks: list[Block] = [
        header(f"Reconciliation: {rec.period.label}"),
        section(f"Vendor totals against the stored rows, {period_text(rec.period)}."),
    ]
    if not rec.sources:
        blocks.append(section("No usage and no vendor total recorded for this period."))
    for figures in rec.sources[:40]:
        blocks.append(section(_source_text(figures)))
    if rec.drift:
        lines = [
            f"{escape(d.label)}: estimated {usd(d.estimate_micros)} · billed {usd(d.billed_micros)} "
            f"({percent(d.difference_percent)})"
            for d in rec.drift
        ]
        blocks.append(section("*Estimates beside bills*\n" + "\n".join(lines)))
    if rec.unpriced:
        note = " — counted, in no dollar total"
        blocks.append(section(":grey_question: " + unpriced_text(rec.unpriced) + note))
    blocks.append(
        context(
            TOLERANCE_NOTE,
            "A vendor total covers its own span (Cursor: the billing cycle to date) and is compared with "
            "the rows of that span.",
        )
    )
    mismatches = len(rec.mismatches)
    return message(f"Reconciliation {rec.period.label}: {mismatches} mismatch(es) above 1%", blocks)


def reconcile_status_blocks(rec: Reconciliation) -> list[Block]:
    """The short form for ``/tokens status``: mismatches above 1% in full, sources that match or
    report no vendor total in one line each, and the unpriced models."""
    lines = [f"{escape(c.source)} {check_line(c)}" for c in rec.mismatches]
    matched = sorted({c.source for f in rec.sources for c in f.checks if not c.mismatched})
    missing = [f.source for f in rec.sources if not f.checks]
    if matched:
        lines.append(":white_check_mark: within 1%: " + ", ".join(escape(s) for s in matched))
    if missing:
        lines.append(f"{NO_VENDOR_TOTAL}: " + ", ".join(escape(s) for s in missing))
    if rec.unpriced:
        lines.append(":grey_question: " + unpriced_text(rec.unpriced))
    if not lines:
        return []
    return [
        divider(),
        section(
            f"*Reconciliation, {escape(rec.period.label)}* (`/tokens reconcile` for the figures)\n"
            + "\n".join(lines)
        ),
    ]


def with_reconciliation(reply: Message, rec: Reconciliation | None) -> Message:
    if rec is None:
        return reply
    extra = reconcile_status_blocks(rec)
    return message(reply.text, [*reply.blocks, *extra]) if extra else reply


def unpriced_line(models: list[UnpricedModel]) -> str | None:
    """The spend views' note: ``+ 1,200 tokens on unpriced models (gpt-9) not in the total``."""
    if not models:
        return None
    tokens = sum(m.tokens for m in models)
    names = ", ".join(escape(m.model or "(no model)") for m in models[:MAX_UNPRICED_NAMES])
    more = f" and {len(models) - MAX_UNPRICED_NAMES} more" if len(models) > MAX_UNPRICED_NAMES else ""
    return f"+ {count(tokens)} tokens on unpriced models ({names}{more}) not in the total"


def with_unpriced(reply: Message, models: list[UnpricedModel]) -> Message:
    """``reply`` (a me / team / org view) with the unpriced-models line before its footer."""
    line = unpriced_line(models)
    if line is None:
        return reply
    blocks = list(reply.blocks)
    at = len(blocks) - 1 if blocks and blocks[-1].get("type") == "context" else len(blocks)
    return message(reply.text, [*blocks[:at], context(line), *blocks[at:]])
