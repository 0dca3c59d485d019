"""Exact money. Everything is stored as integer micro-USD; vendors' raw amounts stay as strings.

Each vendor uses its own unit (see docs/sources/): OpenAI dollars as JSON numbers, Anthropic
cents as decimal strings, Claude Code cents as numbers, Cursor float cents, OpenRouter dollars.
JSON numbers are parsed as ``Decimal`` (``bot.sources.http.decode_json``, else
``json.loads(parse_float=Decimal)``) so no float ever touches an amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

MICROS_PER_USD = 1_000_000

# Raw units, named so a stored row says how to read its raw_amount.
USD = "usd"
USD_CENTS = "usd_cents"
ESTIMATE_PREFIX = "estimate:"


def kind_of(value: object) -> str:
    """What a value that could not be read is, for an error message, never the value itself: a
    value from outside may be a secret (a key pasted into the wrong field)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"a text of {len(value)} characters"
    if isinstance(value, int | float | Decimal):
        return "a number"
    return f"a {type(value).__name__}"


def to_decimal(value: object) -> Decimal:
    """A vendor number (str, int or Decimal) as Decimal; floats are refused on purpose."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an amount: {kind_of(value)}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not an amount: {kind_of(value)} that is not a number") from None
        if not result.is_finite():
            raise ValueError("not an amount: not a finite number")
        return result
    raise TypeError(f"refusing a {type(value).__name__} amount; parse JSON with parse_float=Decimal")


def usd_to_micros(amount: Decimal) -> int:
    return int((amount * MICROS_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def cents_to_micros(amount: Decimal) -> int:
    return int((amount * (MICROS_PER_USD // 100)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def micros_to_usd(micros: int) -> Decimal:
    return Decimal(micros) / MICROS_PER_USD


@dataclass(frozen=True, slots=True)
class Money:
    """A normalized amount plus the vendor's own figure, for traceability."""

    micros: int
    raw_amount: str
    raw_unit: str

    @classmethod
    def zero(cls, unit: str = USD) -> Money:
        return cls(0, "0", unit)

    @classmethod
    def from_usd(cls, value: object) -> Money:
        amount = to_decimal(value)
        return cls(usd_to_micros(amount), str(amount), USD)

    @classmethod
    def from_cents(cls, value: object) -> Money:
        amount = to_decimal(value)
        return cls(cents_to_micros(amount), str(amount), USD_CENTS)

    def __add__(self, other: Money) -> Money:
        if other.raw_unit != self.raw_unit:
            raise ValueError(f"cannot add {other.raw_unit} to {self.raw_unit}")
        raw = to_decimal(self.raw_amount) + to_decimal(other.raw_amount)
        return Money(self.micros + other.micros, str(raw), self.raw_unit)


def format_usd(micros: int, *, cents: bool = True) -> str:
    """``$1,234.57``; rounding half-even to the cent, exact from micros."""
    amount = micros_to_usd(micros)
    if cents:
        amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
        text = f"{abs(amount):,.2f}"
    else:
        amount = amount.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        text = f"{abs(amount):,.0f}"
    return f"-${text}" if amount < 0 else f"${text}"
