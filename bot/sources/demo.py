"""A seeded synthetic organisation that goes through the real sync engine.

About 25 people in three teams, four vendors, 90 days of usage and value signals, with the
outliers a real org has: one person with heavy spend and no accepted code, one who switched to
an expensive model, a couple who barely use AI. Deterministic: the same day always yields the
same rows, so re-syncing never changes totals.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.resources import files
from typing import ClassVar

from bot.domain.money import Money
from bot.domain.records import ActivityRecord, Batch, IdentityHint, UsageRecord, email_actor
from bot.sources.base import split_window

DEMO_DOMAIN = "example.com"
DEMO_DAYS = 90
SEED = "tokenwise-demo-v1"


@dataclass(frozen=True)
class DemoPerson:
    name: str
    team: str
    intensity: float  # typical daily usage multiplier
    profile: str = "normal"  # normal | idle_burner | big_model | light

    @property
    def email(self) -> str:
        return f"{self.name.split()[0].lower()}@{DEMO_DOMAIN}"


TEAMS = ("platform", "payments", "mobile")
#: The roster, one row a person (name, team, intensity, profile), in a data file of its own.
PEOPLE: tuple[DemoPerson, ...] = tuple(
    DemoPerson(row["name"], row["team"], float(row["intensity"]), row["profile"])
    for row in csv.DictReader(files("bot.sources").joinpath("demo_people.csv").read_text().splitlines())
)

# Per-vendor demo models with price per million tokens in cents (input, output).
MODELS = {
    "openai": (("gpt-4.1", 200, 800), ("gpt-4.1-mini", 40, 160), ("o3", 200, 800)),
    "claude_code": (("claude-sonnet-4", 300, 1500), ("claude-opus-4", 1500, 7500)),
    "cursor": (("claude-4-sonnet", 300, 1500), ("gpt-5", 125, 1000)),
    "github_copilot": (),
}
DEMO_VENDORS = ("openai", "claude_code", "cursor", "github_copilot")


def _rng(*parts: object) -> random.Random:
    return random.Random(":".join([SEED, *map(str, parts)]))


def _is_workday(day: date) -> bool:
    return day.weekday() < 5


class DemoConnector:
    vendor: ClassVar[str] = "demo"

    def __init__(self, vendor: str, today: date) -> None:
        self.vendor = vendor  # type: ignore[misc]  # one demo connector per vendor
        self.name = f"demo-{vendor}"
        self.lag = timedelta(0)
        self.trailing_days = 1
        self.max_window_days = 31
        self.first_day = today - timedelta(days=DEMO_DAYS)
        self.today = today

    def close(self) -> None:
        pass

    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        for start, end in split_window(window_start, window_end, self.max_window_days):
            batch = Batch(start, end)
            day = max(start, self.first_day)
            while day < min(end, self.today + timedelta(days=1)):
                for person in PEOPLE:
                    self._person_day(batch, person, day)
                day += timedelta(days=1)
            if start == window_start:
                batch.identities = [IdentityHint(email_actor(p.email), p.email, p.name) for p in PEOPLE]
            yield batch

    def _person_day(self, batch: Batch, person: DemoPerson, day: date) -> None:
        rng = _rng(self.vendor, person.email, day.isoformat())
        active = _is_workday(day) or person.profile == "idle_burner"
        if not active or rng.random() > min(0.95, 0.55 + 0.3 * person.intensity):
            return
        actor = email_actor(person.email)
        scale = person.intensity * rng.lognormvariate(0, 0.5)
        # The expensive-model switch happens 30 days before today.
        recent = (self.today - day).days < 30
        if self.vendor == "github_copilot":
            if person.profile == "idle_burner":
                return
            shown = int(120 * scale)
            accepted = int(shown * rng.uniform(0.2, 0.4))
            batch.activity.append(
                _suggestions(day, actor, shown, accepted, acceptances=accepted, requests=int(30 * scale))
            )
            return
        models = MODELS[self.vendor]
        model, in_price, out_price = models[0]
        if (person.profile == "big_model" and recent) or (len(models) > 2 and rng.random() < 0.15):
            model, in_price, out_price = models[-1]
        input_tokens = int(400_000 * scale)
        output_tokens = int(60_000 * scale)
        cents = (input_tokens * in_price + output_tokens * out_price) // 1_000_000
        batch.usage.append(
            UsageRecord(
                day=day,
                actor=actor,
                model=model,
                cost=Money.from_cents(cents),
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_read_tokens=int(input_tokens * 0.3),
                requests=int(120 * scale),
                cost_basis="estimated" if self.vendor == "claude_code" else "billed",
            )
        )
        if person.profile == "idle_burner":
            return  # heavy spend, no accepted code: the case against
        if self.vendor == "cursor":
            shown = int(200 * scale)
            accepted = int(shown * rng.uniform(0.25, 0.45))
            batch.activity.append(
                _suggestions(
                    day,
                    actor,
                    shown,
                    accepted,
                    acceptances=int(accepted / 3),
                    rejections=int((shown - accepted) / 6),
                    requests=int(40 * scale),
                )
            )
        elif self.vendor == "claude_code":
            added = int(150 * scale)
            batch.activity.append(
                ActivityRecord(
                    day,
                    actor,
                    lines_added=added,
                    lines_removed=int(added * 0.3),
                    sessions=max(1, int(3 * scale)),
                    commits=int(rng.random() < 0.5 * person.intensity) + int(scale > 1.5),
                    pull_requests=int(rng.random() < 0.15 * person.intensity),
                    acceptances=int(20 * scale),
                    rejections=int(3 * scale),
                )
            )


def _suggestions(day: date, actor: str, shown: int, accepted: int, **counts: int) -> ActivityRecord:
    """An editor's day: ``shown`` lines suggested (one suggestion a line), ``accepted`` kept."""
    return ActivityRecord(
        day, actor, lines_suggested=shown, lines_accepted=accepted, suggestions_shown=shown, **counts
    )


def demo_connectors(today: date) -> list[DemoConnector]:
    return [DemoConnector(vendor, today) for vendor in DEMO_VENDORS]
