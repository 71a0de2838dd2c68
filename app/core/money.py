"""Money is integer micro-units of a currency (1 unit = 1,000,000 micros), converted at the edges.

Sub-cent per-item prices stay exact; floats never touch an amount.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICROS_PER_UNIT = 1_000_000
MICROS_PER_CENT = 10_000


def format_micros(micros: int) -> str:
    """12_345_000 → "12.345" (no float on the way)."""
    sign = "-" if micros < 0 else ""
    units, rest = divmod(abs(micros), MICROS_PER_UNIT)
    fraction = f"{rest:06d}".rstrip("0")
    return f"{sign}{units}.{fraction}" if fraction else f"{sign}{units}"


def parse_amount(text: str) -> int:
    """ "0.05" → 50_000 micros. Raises ValueError for anything not an exact decimal amount with at
    most six decimal places."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {text!r}")
    micros = value * MICROS_PER_UNIT
    if micros != micros.to_integral_value():
        raise ValueError(f"more than six decimal places: {text!r}")
    return int(micros)


def floor_to_cents(micros: int) -> int:
    """Round down to whole cents (payouts move cents; the remainder stays in the balance)."""
    return micros - micros % MICROS_PER_CENT
