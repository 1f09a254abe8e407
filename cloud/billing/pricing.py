"""Prices for metered usage: tiered (阶梯) and time-of-use, with the parts an invoice line shows.

cost = Σₖ priceₖ * min(max(usage - Lₖ, 0), Uₖ - Lₖ), exact until the line is rounded half-up.
Tiers that count a whole year (China's residential ladders) pass the usage already billed this
year as `prior`, so the bill prices only the new units at the tiers they fall in.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from cloud.billing.errors import BillingError
from cloud.billing.money import exact, round_half_up


@dataclass(frozen=True, slots=True)
class Tier:
    lower: Decimal
    upper: Decimal | None  # None = no upper bound
    price: Fraction  # fen per unit


@dataclass(frozen=True, slots=True)
class PricePart:
    label: str  # "0-100" or a time-of-use zone
    quantity: Decimal
    price: Fraction  # fen per unit
    cost: Fraction  # exact fen


@dataclass(frozen=True, slots=True)
class Priced:
    amount: int  # fen, rounded once
    parts: tuple[PricePart, ...]


def check_tiers(tiers: Sequence[Tier]) -> None:
    if not tiers or tiers[0].lower != 0:
        raise BillingError("tiers must start at 0")
    for a, b in itertools.pairwise(tiers):
        if a.upper is None or a.upper != b.lower:
            raise BillingError(f"tier after {a.lower} must start where it ends")
    for t in tiers:
        if t.upper is not None and t.upper <= t.lower:
            raise BillingError(f"tier {t.lower}-{t.upper} is empty")
        if t.price < 0:
            raise BillingError(f"tier {t.lower} has a negative price")
    if tiers[-1].upper is not None:
        raise BillingError("the last tier must be open-ended")


def tiered(
    used: Decimal, tiers: Sequence[Tier], *, prior: Decimal = Decimal(0), checked: bool = False
) -> Priced:
    """`checked`: the caller already ran `check_tiers` on these tiers (a run prices thousands
    of meters with one tariff)."""
    if not checked:
        check_tiers(tiers)
    if used < 0 or prior < 0:
        raise BillingError("usage must not be negative")
    lo_used, hi_used = prior, prior + used
    parts = []
    for t in tiers:
        top = hi_used if t.upper is None else min(hi_used, t.upper)
        q = top - max(lo_used, t.lower)
        if q > 0:
            label = f"{t.lower}-{'' if t.upper is None else t.upper}"
            parts.append(PricePart(label, q, t.price, exact(q) * t.price))
    return _priced(parts)


def time_of_use(registers: Mapping[str, Decimal], prices: Mapping[str, Fraction]) -> Priced:
    """One register per zone (peak, flat, valley ...), each at its zone's price."""
    missing = sorted(set(registers) - set(prices))
    if missing:
        raise BillingError(f"no price for time-of-use zone(s) {', '.join(missing)}")
    parts = [
        PricePart(zone, q, prices[zone], exact(q) * prices[zone]) for zone, q in registers.items()
    ]
    return _priced(parts)


def flat(used: Decimal, unit_price: Fraction) -> Priced:
    return _priced([PricePart("flat", used, unit_price, exact(used) * unit_price)])


def _priced(parts: list[PricePart]) -> Priced:
    return Priced(round_half_up(sum(p.cost for p in parts)), tuple(parts))
