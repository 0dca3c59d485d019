"""A seeded synthetic organisation at database scale: people, several vendors and models,
heavy-tailed spend, one row per (source, day, actor, model) as the sync engine stores them.

Every person draws from their own random stream (seeded by the run seed and their index), so
person 17 has the same rows whether the org has 500 or 5,000 people: the 1M, 3M and 10M row
databases share their first people exactly, and a query about one of them must answer the same
at every size. Rows come out day by day (the order the unique key grows in), so bulk loads append.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from bot.domain.records import ACTIVITY_FIELDS

WORKSPACE = "default"
DOMAIN = "bench.example"
START = date(2025, 1, 1)
DAYS = 365
#: The month the query benchmarks ask about: the last full month of data.
REPORT_MONTH = "2025-12"
REPORT_MONTH_START = date(2025, 12, 1)
REPORT_MONTH_END = date(2026, 1, 1)

#: Every row starts with its key's owner: where it came from, the day and who.
_ROW_KEY = ("workspace_id", "source", "vendor", "day", "actor", "person_id")
USAGE_COLUMNS = (
    *_ROW_KEY,
    *("model", "cost_basis", "kind"),
    *("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "requests"),
    *("cost_micros", "raw_amount", "raw_unit", "in_org_total", "sync_run_id"),
)
#: The activity signals in ``ActivityCounts`` order; active time (OTel only) is left at its default 0.
ACTIVITY_SIGNALS = tuple(name for name in ACTIVITY_FIELDS if name != "active_seconds")
ACTIVITY_COLUMNS = (*_ROW_KEY, *ACTIVITY_SIGNALS, "sync_run_id")


@dataclass(frozen=True)
class Model:
    name: str
    weight: float  # popularity
    input_price: int  # micro-USD per token (= USD per million tokens)
    output_price: int
    scale: float  # typical daily input tokens, in thousands


@dataclass(frozen=True)
class SourceShape:
    source: str
    vendor: str
    adoption: float  # share of people who use it
    daily: float  # chance a habit is used on a weekday
    models: tuple[Model, ...]
    actor: str  # actor template, {n} = person index
    cost_basis: str = "billed"
    in_org_total: bool = True
    activity: bool = False  # IDE tools also report value signals
    seat_micros: int = 0  # monthly seat, stored on the 1st
    #: OpenAI reports tokens per user and dollars per API key: two stored rows per model-day.
    cost_actor: str | None = None


#: The models each source's people pick from: source, model, popularity weight, input and output
#: price (micro-USD per token), typical daily input tokens (thousands).
MODELS = """
openai       gpt-4o-2024-08-06                  5  3 10  60
openai       gpt-4o-mini-2024-07-18             6  1  1 120
openai       gpt-4.1-2025-04-14                 4  2  8  80
openai       o3-2025-04-16                      2  2  8  40
openai       o4-mini-2025-04-16                 3  1  4  60
openai       gpt-5-2025-08-07                   4  1 10  70
openai       text-embedding-3-small             2  1  0 400
anthropic    claude-sonnet-4-20250514           6  3 15  70
anthropic    claude-opus-4-20250514             2 15 75  25
anthropic    claude-3-5-haiku-20241022          3  1  4 150
anthropic    claude-sonnet-4-5-20250929         4  3 15  70
claude_code  claude-sonnet-4-20250514           6  3 15 300
claude_code  claude-opus-4-20250514             3 15 75  80
claude_code  claude-3-5-haiku-20241022          2  1  4 100
cursor       claude-4-sonnet                    6  3 15  90
cursor       gpt-5                              4  1 10  90
cursor       auto                               5  1  5 120
cursor       claude-4-opus                      1 15 75  30
cursor       gemini-2.5-pro                     2  1 10  80
openrouter   deepseek/deepseek-chat             3  1  1 200
openrouter   meta-llama/llama-3.3-70b-instruct  2  1  1 150
openrouter   google/gemini-2.5-flash            3  1  2 200
openrouter   x-ai/grok-4                        1  3 15  40
windsurf     swe-1                              3  1  4  80
windsurf     claude-sonnet-4                    2  3 15  60
"""


def _models(source: str) -> tuple[Model, ...]:
    rows = (line.split() for line in MODELS.strip().splitlines())
    return tuple(Model(name, *map(int, numbers)) for owner, name, *numbers in rows if owner == source)


def _shape(source: str, adoption: float, daily: float, actor: str, **options) -> SourceShape:
    """A source whose vendor has its name, with its models from ``MODELS``."""
    return SourceShape(source, source, adoption, daily, _models(source), actor, **options)


SOURCES: tuple[SourceShape, ...] = (
    _shape("openai", 0.75, 0.8, "openai_user:user-{n}", cost_actor="openai_key:key-{n}"),
    _shape("anthropic", 0.6, 0.8, "anthropic_key:apikey_{n}"),
    # Claude Code's dollars are estimates, outside the org total: the Anthropic cost report bills them.
    _shape("claude_code", 0.55, 0.8, f"email:p{{n}}@{DOMAIN}", cost_basis="estimated", in_org_total=False),
    _shape("cursor", 0.7, 0.85, f"email:p{{n}}@{DOMAIN}", activity=True, seat_micros=40_000_000),
    _shape("openrouter", 0.25, 0.6, "openrouter_key:key-{n}"),
    _shape("windsurf", 0.15, 0.8, "windsurf_key:ws-{n}", activity=True),
    # Seats and value only, no metered usage.
    _shape("github_copilot", 0.50, 0.0, "github:dev{n}", activity=True, seat_micros=19_000_000),
)
SOURCE_BY_NAME = {shape.source: shape for shape in SOURCES}

#: Service accounts: API keys that belong to no person (the org view's "unattributed").
SERVICE_ACTORS = 40


@dataclass
class Habit:
    shape: SourceShape
    model: Model
    chance: float


@dataclass
class SynthPerson:
    index: int  # 1-based; also the person id in the bench database
    intensity: float
    rng: random.Random
    habits: list[Habit] = field(default_factory=list)
    sources: list[SourceShape] = field(default_factory=list)

    @property
    def email(self) -> str:
        return f"p{self.index}@{DOMAIN}"

    @property
    def slack_user_id(self) -> str:
        return slack_id(self.index)


def slack_id(index: int) -> str:
    return f"UB{index:06d}"


def person_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"{seed}:person:{index}")


def make_person(seed: int, index: int) -> SynthPerson:
    rng = person_rng(seed, index)
    # Heavy tail: a lognormal usage multiplier puts the top 1% at ~15x the median.
    person = SynthPerson(index, rng.lognormvariate(0.0, 1.1), rng)
    for shape in SOURCES:
        if rng.random() >= shape.adoption:
            continue
        person.sources.append(shape)
        if not shape.models:
            continue
        weights = [m.weight for m in shape.models]
        count = min(len(shape.models), 1 + int(rng.expovariate(0.38)))
        chosen: list[Model] = []
        while len(chosen) < count:
            model = rng.choices(shape.models, weights)[0]
            if model not in chosen:
                chosen.append(model)
        for rank, model in enumerate(chosen):
            # The main model is used most days; the others now and then.
            chance = (
                shape.daily * (1.0 if rank == 0 else 0.7 / rank**0.5) * min(1.6, 0.7 + person.intensity / 2)
            )
            person.habits.append(Habit(shape, model, min(chance, 0.98)))
    return person


@dataclass
class DayRows:
    day: date
    usage: list[tuple]
    activity: list[tuple]


def _key(shape: SourceShape, day: str, actor: str, person_id: int | None) -> tuple:
    """The first columns of a row, ``_ROW_KEY``."""
    return (WORKSPACE, shape.source, shape.vendor, day, actor, person_id)


def _usage_row(shape: SourceShape, day: str, actor: str, person_id, model: Model, rng, intensity: float):
    thousands = model.scale * intensity * rng.lognormvariate(0.0, 0.8)
    input_tokens = int(thousands * 1000)
    output_tokens = int(input_tokens * rng.uniform(0.05, 0.3))
    cache_read = int(input_tokens * rng.uniform(0.0, 1.5)) if shape.vendor != "openrouter" else 0
    cache_write = int(input_tokens * 0.1) if shape.vendor in ("anthropic", "claude_code") else 0
    requests = max(1, int(input_tokens / 4000))
    cost = (
        input_tokens * model.input_price
        + output_tokens * model.output_price
        + (cache_read * model.input_price) // 10
        + (cache_write * model.input_price * 5) // 4
    )
    return (
        *_key(shape, day, actor, person_id),
        model.name,
        shape.cost_basis,
        "usage",
        input_tokens,
        output_tokens,
        cache_read,
        cache_write,
        requests,
        cost,
        f"{cost / 1_000_000:.6f}",
        "usd",
        shape.in_org_total,
        None,
    )


def _seat_row(shape: SourceShape, day: str, actor: str, person_id: int) -> tuple:
    micros = shape.seat_micros
    return (
        *_key(shape, day, actor, person_id),
        "",
        "billed",
        "seat",
        0,
        0,
        0,
        0,
        0,
        micros,
        f"{micros / 1_000_000:.2f}",
        "usd",
        True,
        None,
    )


def _activity_row(shape: SourceShape, day: str, actor: str, person_id: int, rng, intensity: float) -> tuple:
    shown = int(60 * intensity * rng.lognormvariate(0.0, 0.6))
    accepted = int(shown * rng.uniform(0.2, 0.45))
    lines = int(accepted * rng.uniform(1.5, 4.0))
    return (
        *_key(shape, day, actor, person_id),
        int(lines * 2.5),
        lines,
        int(lines * 1.3),
        int(lines * 0.4),
        shown,
        accepted,
        int(shown * 0.1),
        0,
        0,
        0,
        0,
        0,
        0,
        rng.randint(1, 6),
        int(shown / 3),
        None,
    )


def actor_of(shape: SourceShape, index: int) -> str:
    return shape.actor.format(n=index)


def generate(seed: int, people: int, days: int = DAYS, start: date = START) -> Iterator[DayRows]:
    """Every usage and activity row of the org, one day at a time (deterministic)."""
    persons = [make_person(seed, index) for index in range(1, people + 1)]
    services = random.Random(f"{seed}:services")
    service_shapes = [SOURCE_BY_NAME["openai"], SOURCE_BY_NAME["anthropic"], SOURCE_BY_NAME["openrouter"]]
    # Service keys scale with the org (one per 125 people), heavy users of one or two models.
    service_count = max(1, min(SERVICE_ACTORS, people // 125))
    service_habits = []
    for number in range(service_count):
        shape = service_shapes[number % len(service_shapes)]
        models = services.sample(shape.models, 2)
        service_habits.append((shape, f"{shape.actor.split(':')[0]}:service-{number}", models))
    for offset in range(days):
        day = start + timedelta(days=offset)
        text = day.isoformat()
        weekend = day.weekday() >= 5
        usage: list[tuple] = []
        activity: list[tuple] = []
        for person in persons:
            rng = person.rng
            factor = 0.4 if weekend else 1.0
            used_sources: set[str] = set()
            for habit in person.habits:
                if rng.random() < habit.chance * factor:
                    shape = habit.shape
                    used_sources.add(shape.source)
                    row = _usage_row(
                        shape,
                        text,
                        actor_of(shape, person.index),
                        person.index,
                        habit.model,
                        rng,
                        person.intensity,
                    )
                    if shape.cost_actor:
                        usage.append((*row[:14], 0, "0.000000", *row[16:]))
                        cost_actor = shape.cost_actor.format(n=person.index)
                        usage.append((*row[:4], cost_actor, *row[5:9], 0, 0, 0, 0, 0, *row[14:]))
                    else:
                        usage.append(row)
            for shape in person.sources:
                if shape.seat_micros and day.day == 1:
                    usage.append(_seat_row(shape, text, actor_of(shape, person.index), person.index))
                if shape.activity and (
                    shape.source in used_sources or (not shape.models and rng.random() < 0.6 * factor)
                ):
                    activity.append(
                        _activity_row(
                            shape, text, actor_of(shape, person.index), person.index, rng, person.intensity
                        )
                    )
        for shape, actor, models in service_habits:
            for model in models:
                usage.append(_usage_row(shape, text, actor, None, model, services, 8.0))
        yield DayRows(day, usage, activity)


def people_rows(people: int) -> list[dict]:
    return [
        {
            "id": index,
            "workspace_id": WORKSPACE,
            "email": f"p{index}@{DOMAIN}",
            "slack_user_id": slack_id(index),
            "display_name": f"Person {index}",
        }
        for index in range(1, people + 1)
    ]


def identity_rows(seed: int, people: int) -> list[dict]:
    """Each person's vendor actors, as the connectors' identity hints would have linked them."""
    rows = []
    for index in range(1, people + 1):
        person = make_person(seed, index)
        actors = {f"email:p{index}@{DOMAIN}"} | {actor_of(shape, index) for shape in person.sources}
        actors |= {shape.cost_actor.format(n=index) for shape in person.sources if shape.cost_actor}
        rows.extend(
            {"workspace_id": WORKSPACE, "actor": actor, "person_id": index, "origin": "auto"}
            for actor in sorted(actors)
        )
    return rows
