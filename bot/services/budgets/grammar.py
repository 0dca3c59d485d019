"""The budget command grammar (pure): amounts, periods, thresholds, targets and the arguments of
``/tokens budget set`` and ``/tokens budget request``. Bad input raises ``BudgetError`` with a
message that says what to write instead."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

from bot.domain.money import format_usd, usd_to_micros
from bot.services import mentions
from bot.services.budgets.vocabulary import (
    CHANNEL,
    DAY_WORDS,
    DEFAULT_THRESHOLDS,
    GROUP,
    MAX_AMOUNT_MICROS,
    MAX_AMOUNT_USD,
    MAX_REASON,
    MAX_THRESHOLD,
    MAX_THRESHOLDS,
    ORG,
    PERIOD_WORDS,
    PERSON,
    VENDORS,
    YEAR_WORDS,
    BudgetError,
)

# -- amounts, periods, thresholds --------------------------------------------------------------

_AMOUNT = re.compile(r"^\$?(?P<num>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?(?P<k>[kK])?$")
_MILLIONS = re.compile(r"^\$?[\d,]*\.?\d*[mM]$")
EXAMPLES = "`$400`, `5k`, `$50,000` or `1.5k`"


def _a(word: str) -> str:
    """The word with its indefinite article: "an amount", "a floor"."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def parse_amount(text: str, *, what: str = "amount") -> int:
    """``$400``, ``400``, ``5k``, ``1.5k``, ``$50,000``, ``$99.50`` -> integer micros.

    Refused: negative, zero, over $10,000,000, fractions of a cent, misplaced commas, ``m``
    (million or month?), anything else that is not a plain dollar figure."""
    raw = text.strip()
    shown = raw[:40]
    if not raw:
        raise BudgetError(f"The {what} is missing: write it like {EXAMPLES}.")
    if raw.startswith(("-", "−", "$-", "-$", "(")):
        raise BudgetError(f"`{shown}` is negative: {_a(what)} must be more than $0.")
    if _MILLIONS.match(raw) and any(c.isdigit() for c in raw):
        raise BudgetError(
            f"`{shown}` is ambiguous (`m` could mean million or month): write the dollars out, "
            "e.g. `$2,000,000`, and the period after a slash, e.g. `$400/month`."
        )
    match = _AMOUNT.match(raw)
    if match is None:
        if "," in raw and any(c.isdigit() for c in raw):
            raise BudgetError(
                f"`{shown}` is not an amount I can read: commas go only between thousands "
                f"(`50,000`) and a dot before cents (`99.50`)."
            )
        raise BudgetError(f"`{shown}` is not an amount: write it like {EXAMPLES}.")
    digits = match.group("num").replace(",", "")
    if match.group("frac"):
        digits += "." + match.group("frac")
    try:
        value = Decimal(digits)
    except InvalidOperation:  # pragma: no cover - the pattern only lets digits through
        raise BudgetError(f"`{shown}` is not an amount: write it like {EXAMPLES}.") from None
    if match.group("k"):
        value *= 1000
    if value == 0:
        raise BudgetError(f"`{shown}` is zero: {_a(what)} must be more than $0.")
    if (value * 100) != (value * 100).to_integral_value():
        raise BudgetError(f"`{shown}` has fractions of a cent: round the {what} to the cent.")
    if value > MAX_AMOUNT_USD:
        raise BudgetError(
            f"`{shown}` is over {format_usd(MAX_AMOUNT_MICROS, cents=False)}, which I take for a typo."
        )
    return usd_to_micros(value)


def parse_period_word(word: str, *, amount_text: str = "") -> str:
    period = PERIOD_WORDS.get(word.lower())
    if period is not None:
        return period
    shown = f"{amount_text}/{word}" if amount_text else word
    if word.lower() in YEAR_WORDS:
        hint = ""
        try:
            quarterly = parse_amount(amount_text) // 4 if amount_text else 0
            hint = (
                f" For a yearly figure split evenly, say `{format_usd(quarterly)}/quarter`."
                if quarterly
                else ""
            )
        except BudgetError:
            pass
        raise BudgetError(
            f"`{shown[:40]}` is ambiguous: budgets reset every week, month or quarter, not every year.{hint}"
        )
    if word.lower() in DAY_WORDS:
        raise BudgetError(f"`{shown[:40]}`: budgets reset every week, month or quarter, not daily or hourly.")
    raise BudgetError(f"`{shown[:40]}` has no period I know: use `/week`, `/month` or `/quarter`.")


def parse_amount_period(text: str) -> tuple[int, str | None]:
    """``5k/month`` -> (5,000,000,000, "month"); ``$400`` -> (400,000,000, None)."""
    amount_text, slash, period_text = text.partition("/")
    if slash and not period_text:
        raise BudgetError(f"`{text[:40]}` ends with a slash: use `/week`, `/month` or `/quarter`.")
    period = parse_period_word(period_text, amount_text=amount_text) if slash else None
    return parse_amount(amount_text), period


def parse_thresholds(text: str) -> tuple[int, ...]:
    """``50,90`` -> (50, 90): whole percents of the ceiling, 1 to 200, at most six."""
    if text.lower() in ("default", "defaults"):
        return DEFAULT_THRESHOLDS
    parts = [p.strip().removesuffix("%") for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise BudgetError(f"`{text[:40]}` is not a list of percents: write it like `thresholds 50,80,100`.")
    values = sorted({int(p) for p in parts})
    if values[0] < 1 or values[-1] > MAX_THRESHOLD:
        raise BudgetError(
            f"Thresholds are percents of the ceiling from 1 to {MAX_THRESHOLD}; `{text[:40]}` is not."
        )
    if len(values) > MAX_THRESHOLDS:
        raise BudgetError(f"At most {MAX_THRESHOLDS} thresholds per budget; `{text[:40]}` has {len(values)}.")
    return tuple(values)


def format_thresholds(values: Sequence[int]) -> str:
    return ",".join(str(v) for v in values)


# -- the command grammar (pure) ----------------------------------------------------------------


@dataclass(frozen=True)
class TargetRef:
    """Who a budget is for, as written in the command (not yet resolved to a person or team).
    Ids only: ``bot/slack/blocks/budgets.target_mention`` draws it for a reader."""

    kind: str  # person | group | channel | org
    slack_id: str  # U.../S.../C... or "org"
    name: str = ""  # the label Slack sent with the mention ("" when none)


_TARGET_KINDS = {mentions.USER: PERSON, mentions.USERGROUP: GROUP, mentions.CHANNEL: CHANNEL}


def parse_target(token: str) -> TargetRef | None:
    if token.lower() == ORG:
        return TargetRef(ORG, ORG)
    found = mentions.parse_mention(token)
    if found is None:
        return None
    return TargetRef(_TARGET_KINDS[found.kind], found.id, found.label)


def target_error(token: str) -> BudgetError:
    return BudgetError(
        f"`{token[:50]}` is not a person, user group or channel I can read: pick it from Slack's @ or # "
        "list, or say `org`."
    )


@dataclass(frozen=True)
class BudgetSpec:
    """What ``/tokens budget set`` asked for. ``None`` options keep an existing budget's value."""

    target: TargetRef
    amount_micros: int
    period: str
    vendor: str = ""
    floor_given: bool = False
    floor_micros: int | None = None
    include_seats: bool | None = None
    thresholds: tuple[int, ...] | None = None


def parse_set(args: Sequence[str]) -> BudgetSpec:
    """``<target> <amount>[/period] [vendor] [floor <amount>|off] [include|exclude seats]
    [thresholds 50,80,100]``; the period defaults to month."""
    if not args:
        raise BudgetError("Say who and how much, e.g. `/tokens budget set @ana $400/month`.")
    target = parse_target(args[0])
    if target is None:
        raise target_error(args[0])
    if len(args) < 2:
        raise BudgetError(f"How much? e.g. `/tokens budget set {args[0]} $400/month`.")
    amount, period = parse_amount_period(args[1])
    rest = list(args[2:])
    if period is None and len(rest) >= 2 and rest[0].lower() == "per":
        period = parse_period_word(rest[1], amount_text=args[1])
        rest = rest[2:]
    spec = BudgetSpec(target, amount, period or "month")
    index = 0
    while index < len(rest):
        word = rest[index].lower()
        following = rest[index + 1] if index + 1 < len(rest) else None
        if word == "floor":
            if following is None:
                raise BudgetError("`floor` needs an amount (e.g. `floor 20000`) or `off`.")
            floor = None if following.lower() in ("off", "none") else parse_amount(following, what="floor")
            spec = replace(spec, floor_given=True, floor_micros=floor)
            index += 2
        elif word in ("include", "exclude"):
            if following is None or following.lower() not in ("seats", "seat"):
                raise BudgetError(f"Say `{word} seats`.")
            spec = replace(spec, include_seats=word == "include")
            index += 2
        elif word in ("thresholds", "threshold", "alerts"):
            if following is None:
                raise BudgetError("`thresholds` needs percents, e.g. `thresholds 50,90`.")
            spec = replace(spec, thresholds=parse_thresholds(following))
            index += 2
        elif word in VENDORS:
            if spec.vendor:
                raise BudgetError("One vendor per budget: set one budget per vendor.")
            spec = replace(spec, vendor=VENDORS[word])
            index += 1
        else:
            raise BudgetError(
                f"`{rest[index][:40]}` is not a vendor or an option. Vendors: "
                f"{', '.join(sorted(set(VENDORS.values())))}. Options: `floor <amount>`, "
                "`include seats`, `thresholds 50,80,100`."
            )
    if spec.floor_micros is not None and spec.floor_micros >= spec.amount_micros:
        raise BudgetError(
            f"The floor ({format_usd(spec.floor_micros)}) must be below the ceiling "
            f"({format_usd(spec.amount_micros)})."
        )
    return spec


def parse_vendor(word: str) -> str:
    vendor = VENDORS.get(word.lower())
    if vendor is None:
        raise BudgetError(
            f"`{word[:40]}` is not a vendor; use one of {', '.join(sorted(set(VENDORS.values())))}."
        )
    return vendor


def parse_request(args: Sequence[str]) -> tuple[int, str]:
    """``<amount> <reason>`` -> (micros, reason)."""
    if not args:
        raise BudgetError(
            "Say how much more and why, e.g. `/tokens budget request $200 load tests this week`."
        )
    amount = parse_amount(args[0])
    reason = " ".join(args[1:]).strip()
    if not reason:
        raise BudgetError(
            "Say why: your manager sees the reason, e.g. `/tokens budget request $200 load tests`."
        )
    if len(reason) > MAX_REASON:
        raise BudgetError(f"Keep the reason under {MAX_REASON} characters (it has {len(reason)}).")
    return amount, reason
