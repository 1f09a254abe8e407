"""Common-area (公摊) and RUBS allocation: who pays which fen of a shared bill.

common = master - Σ submeters; a negative result means a meter or wiring fault and is flagged,
never billed. Shares are split by area, occupants, equal parts or usage, weighted by the days
each unit was occupied; the vacant part of an area or equal share goes to the operator. Units are
never charged above the unit price to recover losses (Guangzhou 2023 rule): a common-area share is
its own line. Every split is largest-remainder, so the shares sum to the bill to the fen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from cloud.billing.errors import BillingError
from cloud.billing.money import exact, split_by

OPERATOR = "operator"
TYPICAL_MAX_LOSS = Decimal("0.15")  # 5-15 % losses are typical; above this, ask for a check


class Basis(StrEnum):
    AREA = "area"
    OCCUPANTS = "occupants"
    EQUAL = "equal"
    USAGE = "usage"


@dataclass(frozen=True, slots=True)
class CommonUsage:
    quantity: Decimal  # master - Σ submeters (may be negative: then not billable)
    loss_ratio: Decimal | None  # quantity ÷ master
    negative: bool
    high_loss: bool


def common_usage(master: Decimal, submeters: Sequence[Decimal]) -> CommonUsage:
    q = master - sum(submeters, Decimal(0))
    ratio = q / master if master > 0 else None
    high = ratio is not None and ratio > TYPICAL_MAX_LOSS
    return CommonUsage(q, ratio, negative=q < 0, high_loss=high)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitBasis:
    key: str  # unit or lease identifier; the list order breaks ties
    area: Decimal = Decimal(0)  # m²
    occupants: int = 0
    usage: Decimal = Decimal(0)
    occupied_days: int  # days of the period a tenant held the unit (0 = vacant)
    period_days: int


@dataclass(frozen=True, slots=True)
class Allocation:
    shares: dict[str, int]  # fen per unit key, plus OPERATOR
    weights: dict[str, Fraction]  # the basis each share was computed from

    def explain(self, key: str, basis: Basis) -> str:
        total = sum(self.weights.values(), Fraction(0))
        w = self.weights.get(key, Fraction(0))
        return f"by {basis}: {float(w):g} of {float(total):g}"


def _weights(units: Sequence[UnitBasis], basis: Basis) -> tuple[dict[str, Fraction], Fraction]:
    """Tenant weights and the operator's (the vacant part of area and equal shares)."""
    tenants: dict[str, Fraction] = {}
    operator = Fraction(0)
    for u in units:
        if not 0 <= u.occupied_days <= u.period_days or u.period_days <= 0:
            raise BillingError(f"unit {u.key}: occupied days must be within the period")
        occupied = Fraction(u.occupied_days, u.period_days)
        if basis is Basis.AREA:
            base = exact(u.area)
        elif basis is Basis.EQUAL:
            base = Fraction(1)
        elif basis is Basis.OCCUPANTS:
            base, occupied = Fraction(u.occupants) * occupied, Fraction(1)
        else:
            base, occupied = exact(u.usage), Fraction(1)
        if base < 0:
            raise BillingError(f"unit {u.key}: {basis} must not be negative")
        tenants[u.key] = base * occupied
        operator += base * (1 - occupied)
    return tenants, operator


def allocate(
    amount: int,
    units: Sequence[UnitBasis],
    basis: Basis,
    *,
    owner_fraction: Fraction = Fraction(0),
) -> Allocation:
    """Split `amount` fen among units by `basis`; `owner_fraction` (RUBS) is kept by the operator.

    RUBS: share_i = bill * (1 - owner%) * w_i ÷ Σw; the operator's exact share is the owner's
    part plus the vacant weight's part of the rest. One largest-remainder split over those exact
    shares, so every part is within one fen of its exact share and they sum to the bill. With no
    weight at all (every unit vacant), the operator carries the whole amount.
    """
    if amount < 0:
        raise BillingError("a negative shared amount is a metering fault: check the meters")
    if not 0 <= owner_fraction <= 1:
        raise BillingError("owner fraction must be between 0 and 1")
    keys = [u.key for u in units]
    if OPERATOR in keys or len(set(keys)) != len(keys):
        raise BillingError(f"unit keys must be unique and not {OPERATOR!r}")
    tenants, vacant = _weights(units, basis)
    weights = {**tenants, OPERATOR: vacant}
    total = sum(weights.values(), Fraction(0))
    if total == 0:
        shares = dict.fromkeys(keys, 0)
        shares[OPERATOR] = amount
        return Allocation(shares, weights)
    rest = 1 - owner_fraction
    exact_shares = {k: w * rest for k, w in tenants.items()}
    exact_shares[OPERATOR] = vacant * rest + total * owner_fraction
    return Allocation(split_by(amount, exact_shares), weights)
