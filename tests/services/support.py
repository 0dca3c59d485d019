"""Shared by the service tests: a scripted connector whose one batch goes through the real sync
engine (people from identity hints, rollups, watermarks), so the tests read what a sync wrote."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

from bot.domain.money import Money
from bot.domain.records import ActivityRecord, Batch, IdentityHint, UsageRecord, email_actor

DAY = date(2026, 3, 10)


class Scripted:
    """A connector that yields one batch of the given (email, dollars, accepted lines, AI commits)."""

    vendor = "cursor"
    name = "cursor"
    lag = timedelta(0)
    trailing_days = 0
    max_window_days = 31

    def __init__(self, figures: dict[str, tuple[str, int, int]]) -> None:
        self.figures = figures

    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        batch = Batch(window_start, window_end)
        for email, (dollars, lines, commits) in self.figures.items():
            actor = email_actor(email)
            batch.identities.append(IdentityHint(actor, email, email.split("@")[0]))
            batch.usage.append(
                UsageRecord(DAY, actor, "gpt-4.1", Money.from_usd(Decimal(dollars)), requests=1)
            )
            batch.activity.append(ActivityRecord(DAY, actor, lines_accepted=lines, commits=commits))
        yield batch

    def close(self) -> None:
        pass
