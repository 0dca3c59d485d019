"""Claude Code Analytics (Anthropic Admin API): one record per actor per UTC day with Claude
Code's own cost estimate per model and the value signals (sessions, lines, commits, pull requests,
tool accept / reject). See docs/sources/claude_code.md.

Money: ``estimated_cost.amount`` is a JSON number in US cents (parsed as Decimal, kept exact) and
stored as ``cost_basis="estimated"`` with ``in_org_total=False``: the same dollars are billed by
Anthropic (the ``anthropic`` source), which alone makes the org total. Who carries a person's
dollars depends on what the same key can read:

- the Usage & Cost Analytics API (days it covers): the ``anthropic`` source stores the person's
  billed cost, so records of API customers here keep their tokens and value signals but carry no
  dollars (raw unit ``tokens_only``; the raw amount keeps Claude Code's estimate in cents).
  Subscription records keep their estimate (not billed per token, so nothing else holds it).
- otherwise: these estimates *are* the person's Claude Code dollars; the ``anthropic`` source drops
  the dollars of its own usage rows for people (or key names) that appear here on the same day.

Actors: ``user_actor`` -> ``email:<email>``; ``api_actor`` -> ``claude_code_key:<key name>``,
linked to the key's creator when exactly one organisation key has that name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import ClassVar

from bot.domain.money import Money
from bot.domain.records import (
    ESTIMATED,
    TOKENS_ONLY,
    ActivityRecord,
    Batch,
    IdentityHint,
    UsageRecord,
    email_actor,
    fold,
)
from bot.settings import Settings
from bot.sources.anthropic import (
    CLAUDE_CODE_ENDPOINT,
    PARSE_ERRORS,
    AdminApiConnector,
    claude_code_records,
)
from bot.sources.base import SourceError, split_window
from bot.sources.values import count, utc_day

UNATTRIBUTED = "claude_code:unattributed"


def actor_of(record: dict) -> str:
    actor = record.get("actor") if isinstance(record.get("actor"), dict) else {}
    email = actor.get("email_address")
    if isinstance(email, str) and email.strip():
        return email_actor(email)
    key_name = actor.get("api_key_name")
    if isinstance(key_name, str) and key_name:
        return f"claude_code_key:{key_name}"
    return UNATTRIBUTED


def parse_record(
    record: dict, day: date, *, billed: bool = False
) -> tuple[list[UsageRecord], ActivityRecord]:
    """One analytics record -> per-model estimated usage rows and one activity row.

    ``billed``: Anthropic's billed cost per person covers this day, so an API customer's rows keep
    their tokens but no dollars.
    """
    actor = actor_of(record)
    tokens_only = billed and (record.get("customer_type") or "api") == "api"
    if record.get("date") is not None and utc_day(record["date"]) != day:
        raise ValueError(f"record dated {record['date']!r} in the report for {day}")
    metrics = record.get("core_metrics") or {}
    lines = metrics.get("lines_of_code") or {}
    activity = ActivityRecord(
        day=day,
        actor=actor,
        sessions=count(metrics.get("num_sessions")),
        lines_added=count(lines.get("added")),
        lines_removed=count(lines.get("removed")),
        commits=count(metrics.get("commits_by_claude_code")),
        pull_requests=count(metrics.get("pull_requests_by_claude_code")),
    )
    for action in (record.get("tool_actions") or {}).values():
        activity.acceptances += count((action or {}).get("accepted"))
        activity.rejections += count((action or {}).get("rejected"))
    usage = []
    for item in record.get("model_breakdown") or []:
        tokens = item.get("tokens") or {}
        cost = item.get("estimated_cost") or {}
        currency = str(cost.get("currency") or "USD").upper()
        if currency != "USD":
            raise ValueError(f"unsupported currency {currency!r}")
        amount = cost.get("amount")
        money = Money.from_cents(0 if amount is None else amount)
        usage.append(
            UsageRecord(
                day=day,
                actor=actor,
                model=item.get("model") or "",
                # Billed elsewhere: no dollars here, but Claude Code's own estimate (cents) stays
                # in the raw amount, so estimate and bill can still be compared.
                cost=Money(0, money.raw_amount, TOKENS_ONLY) if tokens_only else money,
                cost_basis=ESTIMATED,
                input_tokens=count(tokens.get("input")),
                output_tokens=count(tokens.get("output")),
                cache_read_tokens=count(tokens.get("cache_read")),
                cache_write_tokens=count(tokens.get("cache_creation")),
                in_org_total=False,
            )
        )
    return usage, activity


class ClaudeCodeConnector(AdminApiConnector):
    vendor: ClassVar[str] = "claude_code"
    lag = timedelta(hours=1)
    trailing_days = 3
    max_window_days = 1  # the report answers one UTC day per request series

    def identities(self, actors: set[str]) -> list[IdentityHint]:
        """Names for email actors, and key-name actors joined to the key's creator when unambiguous."""
        directory = self.directory()
        by_email = {email: name for email, name in directory.users.values()}
        hints = []
        for actor in sorted(actors):
            if actor.startswith("email:"):
                email = actor.removeprefix("email:")
                if by_email.get(email):
                    hints.append(IdentityHint(actor, email, by_email[email]))
            elif actor.startswith("claude_code_key:"):
                creator = directory.creator_of_key_named(actor.removeprefix("claude_code_key:"))
                if creator:
                    hints.append(IdentityHint(actor, creator[0], creator[1]))
        return hints

    def _day(self, day: date) -> Batch:
        batch = Batch(day, day + timedelta(days=1))
        billed = self.analytics.covers(day)
        try:
            for record in claude_code_records(self.http, day):
                usage, activity = parse_record(record, day, billed=billed)
                batch.usage.extend(usage)
                batch.activity.append(activity)
        except PARSE_ERRORS as error:
            raise SourceError(self.name, CLAUDE_CODE_ENDPOINT, f"cannot parse record: {error}") from None
        # "One record per user per day" is not guaranteed: an actor seen twice is summed.
        batch.usage = fold(batch.usage)
        batch.activity = fold(batch.activity)
        return batch

    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        named: set[str] = set()
        for start, _ in split_window(window_start, window_end, self.max_window_days):
            batch = self._day(start)
            actors = {r.actor for r in batch.activity} - named
            if actors:
                batch.identities = self.identities(actors)
                named |= actors
            yield batch


def from_settings(settings: Settings) -> list[ClaudeCodeConnector]:
    """ANTHROPIC_ADMIN_KEY enables this source next to ``anthropic``; so does every ``[[accounts]]``
    entry with vendor "anthropic" (as ``<name>-claude-code``) or vendor "claude_code"."""
    main = settings.vendor_accounts(
        "anthropic",
        key=settings.anthropic_admin_key,
        base_url=settings.anthropic_admin_base_url,
        name="claude_code",
    )
    renamed = [
        account if account.name == "claude_code" else replace(account, name=f"{account.name}-claude-code")
        for account in main
    ]
    own = settings.vendor_accounts("claude_code", key=None, base_url=settings.anthropic_admin_base_url)
    return [
        ClaudeCodeConnector(name=account.name, key=account.key, base_url=account.base_url, settings=settings)
        for account in renamed + own
    ]
