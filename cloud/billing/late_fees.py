"""Late fees: fixed or a percentage of the overdue balance, once or daily, after grace days.

The due date itself is not counted: due on the 1st with 3 grace days, the first fee falls on the
5th. Nothing is charged while the overdue balance is below the policy's minimum, and the fees on
one invoice never exceed the cap. The most specific policy wins: lease > property > org.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction

from cloud.billing.errors import BillingError
from cloud.billing.money import round_half_up


class FeeKind(StrEnum):
    FIXED = "fixed"
    PERCENT = "percent"


class FeeMode(StrEnum):
    ONCE = "once"
    DAILY = "daily"


@dataclass(frozen=True, slots=True, kw_only=True)
class LateFeePolicy:
    kind: FeeKind
    amount: int = 0  # fen per charge, for FIXED
    rate: Fraction = Fraction(
        0
    )  # of the overdue balance per charge, for PERCENT (5/10000 = 0.05 %)
    mode: FeeMode = FeeMode.ONCE
    grace_days: int = 0
    cap: int | None = None  # fen: total late fees on one invoice never exceed it
    min_balance: int = 1  # fen: no fee while the overdue balance is below this

    def __post_init__(self) -> None:
        if self.amount < 0 or self.rate < 0 or self.grace_days < 0 or self.min_balance < 0:
            raise BillingError("late-fee amount, rate, grace days and minimum must not be negative")
        if self.cap is not None and self.cap < 0:
            raise BillingError("late-fee cap must not be negative")

    def first_fee_day(self, due: date) -> date:
        return due + timedelta(days=self.grace_days + 1)

    def per_charge(self, balance: int) -> int:
        if self.kind is FeeKind.FIXED:
            return self.amount
        return round_half_up(balance * self.rate)


def most_specific(*policies: LateFeePolicy | None) -> LateFeePolicy | None:
    """Pass (lease, property, org): the first one that is set wins."""
    return next((p for p in policies if p is not None), None)


@dataclass(frozen=True, slots=True)
class LateFee:
    amount: int  # fen to charge now
    days: int  # charges included (1 for ONCE)
    through: date | None  # last day now covered; pass it back as `charged_through`


def late_fee(
    policy: LateFeePolicy,
    *,
    due: date,
    balance: int,
    as_of: date,
    charged_through: date | None = None,
    already_charged: int = 0,
) -> LateFee:
    """The fee to add on `as_of` for an invoice with `balance` fen still overdue.

    Made for a daily job: it charges the days since `charged_through` (all of them if the job
    missed some) at today's balance, so running it twice for the same day adds nothing.
    """
    first = policy.first_fee_day(due)
    nothing = LateFee(0, 0, charged_through)
    if balance <= 0 or balance < policy.min_balance or as_of < first:
        return nothing
    if policy.mode is FeeMode.ONCE:
        if charged_through is not None or already_charged > 0:
            return nothing
        days = 1
    else:
        since = first if charged_through is None else max(first, charged_through + timedelta(1))
        days = (as_of - since).days + 1
        if days <= 0:
            return nothing
    amount = days * policy.per_charge(balance)
    if policy.cap is not None:
        amount = max(0, min(amount, policy.cap - already_charged))
    return LateFee(amount, days, as_of)
