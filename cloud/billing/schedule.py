"""Rent schedules: the periods a lease is billed for, their due dates, and the escrow flag.

A period spans `cycle_months` rent months (see proration.py for the month-end rule) and is cut at
the lease end. The first bill carries the deposit and is due on the lease start; every later bill
is due `due_days_before` days before its period starts (never before the lease start).
押一付三 is `cycle_months=3, deposit=1 * rent`. With `billing_day` set, periods are aligned to that
day of the month and the days before the first aligned period form a prorated stub period.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from cloud.billing.errors import BillingError
from cloud.billing.money import yuan
from cloud.billing.proration import DAY, Anchor, MonthUse, Proration, prorate

CYCLES = (1, 2, 3, 6, 12)
ESCROW_MAX_RENT_MONTHS = 3  # 建房规[2021]2号: more rent than this at once needs supervision
ESCROW_MAX_DEPOSIT_MONTHS = 1  # ... and more deposit than one month's rent


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseTerms:
    start: date
    end: date  # last day of the lease, inclusive
    monthly_rent: int  # fen
    cycle_months: int = 1
    deposit: int = 0  # fen
    due_days_before: int = 7
    proration: Proration = Proration.CALENDAR
    billing_day: int | None = None  # align periods to this day of the month (1..31)

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise BillingError(f"lease ends ({self.end}) before it starts ({self.start})")
        if self.monthly_rent < 0 or self.deposit < 0:
            raise BillingError("rent and deposit must not be negative")
        if self.cycle_months not in CYCLES:
            raise BillingError(f"payment cycle must be one of {CYCLES} months")
        if self.due_days_before < 0:
            raise BillingError("due_days_before must not be negative")
        if self.billing_day is not None and not 1 <= self.billing_day <= 31:
            raise BillingError("billing_day must be 1..31")

    @classmethod
    def ya_fu(cls, *, ya: int, fu: int, start: date, end: date, monthly_rent: int) -> LeaseTerms:
        """押N付M: a deposit of `ya` months' rent and `fu` months paid in advance (押一付三 = 1, 3).

        Other options: `dataclasses.replace` the result.
        """
        return cls(
            start=start,
            end=end,
            monthly_rent=monthly_rent,
            cycle_months=fu,
            deposit=ya * monthly_rent,
        )

    def anchor(self) -> tuple[Anchor, int]:
        """The rent-month anchor and the first rent month starting on or after the lease start."""
        if self.billing_day is None:
            return Anchor.of(self.start), 0
        anchor = Anchor(self.start.year, self.start.month, self.billing_day)
        k = anchor.month_index(self.start)
        return anchor, k if anchor.month_start(k) == self.start else k + 1


@dataclass(frozen=True, slots=True)
class Period:
    index: int  # 0 = the first bill
    start: date
    end: date  # inclusive
    due: date
    rent: int  # fen
    deposit: int  # fen, on the first bill only
    months: tuple[MonthUse, ...] = field(repr=False)

    @property
    def total(self) -> int:
        return self.rent + self.deposit

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def full(self) -> bool:
        return all(m.full for m in self.months)


def schedule(terms: LeaseTerms, *, after: date | None = None) -> list[Period]:
    """Every period of the lease; with `after`, only the days after it (already invoiced).

    Regenerating with `after` = the last invoiced day never touches invoiced periods: a period
    that straddles it is billed only for the remaining days, and the deposit (first bill) is not
    billed again.
    """
    return list(periods(terms, after=after))


def periods(
    terms: LeaseTerms, *, after: date | None = None, due_by: date | None = None
) -> Iterator[Period]:
    """`schedule` one period at a time; with `due_by`, only the periods due by then."""
    anchor, k0 = terms.anchor()
    index = 0
    if anchor.month_start(k0) > terms.start:
        stub_end = min(anchor.month_start(k0) - DAY, terms.end)
        period = _period(terms, anchor, index, terms.start, stub_end, after=after)
        if period is not None:
            yield period
        index += 1
    k = k0
    if after is not None and after >= terms.start:  # skip whole periods already invoiced
        while anchor.month_start(k + terms.cycle_months) <= after + DAY:
            k += terms.cycle_months
            index += 1
    while (p_start := anchor.month_start(k)) <= terms.end:
        if due_by is not None and index > 0 and p_start - _days(terms) > due_by:
            return
        k += terms.cycle_months
        p_end = min(anchor.month_start(k) - DAY, terms.end)
        period = _period(terms, anchor, index, p_start, p_end, after=after)
        if period is not None:
            yield period
        index += 1


def _period(
    terms: LeaseTerms,
    anchor: Anchor,
    index: int,
    p_start: date,
    p_end: date,
    *,
    after: date | None,
) -> Period | None:
    start = p_start if after is None else max(p_start, after + DAY)
    if start > p_end:
        return None
    due = terms.start if index == 0 else max(terms.start, p_start - _days(terms))
    rent = prorate(terms.monthly_rent, anchor, start, p_end, terms.proration)
    deposit = terms.deposit if index == 0 and after is None else 0
    return Period(index, start, p_end, due, rent.amount, deposit, rent.months)


def _days(terms: LeaseTerms) -> timedelta:
    return timedelta(days=terms.due_days_before)


def rent_for(terms: LeaseTerms, start: date, end: date) -> int:
    """Rent for any span inside the lease (move-out credit, final bill), by the lease's method."""
    if start < terms.start or end > terms.end:
        raise BillingError(f"span {start}..{end} lies outside the lease {terms.start}..{terms.end}")
    anchor, _ = terms.anchor()
    return prorate(terms.monthly_rent, anchor, start, end, terms.proration).amount


def supervision_reasons(monthly_rent: int, cycle_months: int, deposit: int) -> list[str]:
    """Why terms need a supervised account (empty when they need not): the one escrow rule.

    Judged on the agreed terms, so a lease and its schedule can never disagree.
    """
    reasons = []
    if cycle_months > ESCROW_MAX_RENT_MONTHS:
        reasons.append(
            f"collects {yuan(cycle_months * monthly_rent)} rent at once,"
            f" more than {ESCROW_MAX_RENT_MONTHS} months"
        )
    if deposit > ESCROW_MAX_DEPOSIT_MONTHS * monthly_rent:
        reasons.append(f"deposit {yuan(deposit)} is more than one month's rent")
    return reasons


def escrow_reasons(terms: LeaseTerms) -> list[str]:
    """Why the lease must use a supervised account (empty when it need not)."""
    return supervision_reasons(terms.monthly_rent, terms.cycle_months, terms.deposit)
