"""Money in integer fen (分): exact parsing, half-up rounding, and splits that sum to the whole.

Amounts are `int` fen. Anything fractional (a rate, a price per kWh, a share) is an exact
`Fraction` or `Decimal` until the one rounding of a line, so results never depend on float error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TypeVar

from cloud.billing.bounds import MAX_PRICE
from cloud.billing.errors import BillingError

Exact = Fraction | Decimal | int
K = TypeVar("K")


def exact(value: Exact) -> Fraction:
    return value if isinstance(value, Fraction) else Fraction(value)


def round_half_up(value: Exact) -> int:
    """Nearest integer; halves go away from zero, so a credit rounds like the matching charge."""
    v = exact(value)
    q, r = divmod(abs(v.numerator), v.denominator)
    if 2 * r >= v.denominator:
        q += 1
    return -q if v < 0 else q


def _decimal(text: str | Decimal | int, what: str) -> Decimal:
    try:
        value = text if isinstance(text, Decimal) else Decimal(str(text).replace(",", "").strip())
    except InvalidOperation:
        raise BillingError(f"{what} {text!r} is not a number") from None
    if not value.is_finite():
        raise BillingError(f"{what} {text!r} is not a finite number")
    return value


def fen(yuan: str | Decimal | int) -> int:
    """Parse yuan ("1,800.00") into fen; more than two decimals is an error, not a guess."""
    value = _decimal(yuan, "amount") * 100
    if value != value.to_integral_value():
        raise BillingError(f"amount {yuan!r} has more than two decimals (fen)")
    return int(value)


def price(yuan_per_unit: str | Decimal | int) -> Fraction:
    """Parse a unit price in yuan ("0.588" per kWh) into exact fen per unit, within
    0..`bounds.MAX_PRICE` (a stored tariff may predate the API's check)."""
    value = _decimal(yuan_per_unit, "price")
    if value < 0:
        raise BillingError(f"price {yuan_per_unit!r} is negative")
    if value > MAX_PRICE:
        raise BillingError(f"price {yuan_per_unit!r} is above {MAX_PRICE} yuan per unit")
    return exact(value) * 100


def yuan(amount: int) -> str:
    """Format fen as yuan with two decimals and thousands separators: 98710 → "987.10"."""
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def split(total: int, weights: Sequence[Exact]) -> list[int]:
    """Split `total` fen in proportion to `weights` so that the parts sum to it exactly.

    Largest-remainder method: every part gets the floor of its exact share, then the fen left over
    go one each to the largest remainders. Ties go to the larger weight, then to the earlier
    position, so callers that list parts in a stable order (unit code) get the same answer each run.
    A negative total is split like its absolute value and negated.
    """
    ws = [exact(w) for w in weights]
    if any(w < 0 for w in ws):
        raise BillingError("split weights must not be negative")
    # On a common denominator the weights are integers: exact, and far faster than Fractions.
    den = math.lcm(*(w.denominator for w in ws)) if ws else 1
    ints = [w.numerator * (den // w.denominator) for w in ws]
    whole = sum(ints)
    if whole == 0:
        raise BillingError("split weights sum to zero: nothing to divide by")
    sign, amount = (-1, -total) if total < 0 else (1, total)
    parts: list[int] = []
    remainders: list[tuple[int, int, int]] = []
    for i, w in enumerate(ints):
        floor, rest = divmod(amount * w, whole)
        parts.append(floor)
        remainders.append((rest, w, -i))
    left = amount - sum(parts)
    for _, _, neg_i in sorted(remainders, reverse=True)[:left]:
        parts[-neg_i] += 1
    return [sign * p for p in parts]


def split_by(total: int, weights: Mapping[K, Exact]) -> dict[K, int]:
    """`split` keyed by the mapping's keys (their order is the tie-break order)."""
    keys = list(weights)
    return dict(zip(keys, split(total, [weights[k] for k in keys]), strict=True))
