"""Rent months anchored to a day of the month, and rent for any span of days (proration).

Month-end rule: rent month k of a lease anchored on day D starts on day D of the k-th month after
the anchor; when that month has no day D it starts on the 1st of the following month. A rent
month ends the day before the next one starts. A lease from Jan 31 therefore has rent months
Jan 31-Feb 28 (29 in a leap year), Mar 1-Mar 30, Mar 31-Apr 30, May 1-May 30, ... Each start is
computed from the anchor, never chained from the previous one, so the day never drifts.

Proration: a span that covers a whole rent month costs the monthly rent; a partial rent month
costs rent * fraction, the fraction set by the lease's method. Dividing by the days of the rent
month (which are the calendar month's days for a lease anchored on the 1st) makes a full period
prorated over its days sum to exactly the rent.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction

from cloud.billing.errors import BillingError
from cloud.billing.money import round_half_up, yuan

DAY = timedelta(days=1)


class Proration(StrEnum):
    CALENDAR = "calendar"  # days used ÷ days in that rent month (default)
    THIRTY_DAY = "thirty_day"  # days used ÷ 30, at most a full month
    ANNUAL = "annual"  # monthly rent * 12 ÷ 365 per day used


_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_in_month(year: int, month: int) -> int:
    """calendar.monthrange without the weekday it also computes (a run calls this a lot)."""
    if month == 2 and calendar.isleap(year):
        return 29
    return _MONTH_DAYS[month]


@dataclass(frozen=True, slots=True)
class Anchor:
    """The first day of rent month 0, as year, month and day-of-month D (1..31)."""

    year: int
    month: int
    day: int

    @classmethod
    def of(cls, start: date) -> Anchor:
        return cls(start.year, start.month, start.day)

    def month_start(self, k: int) -> date:
        """First day of rent month k (k may be negative)."""
        y, m = divmod(self.month - 1 + k, 12)
        year, month = self.year + y, m + 1
        days = days_in_month(year, month)
        if self.day <= days:
            return date(year, month, self.day)
        return date(year, month, 1) + timedelta(days=days)

    def month_index(self, day: date) -> int:
        """The k whose rent month contains `day`.

        Start from the count of calendar months: rent month k+1 starts in the calendar month
        after `day`'s or later, so the answer is never above it, and at most one below.
        """
        k = (day.year - self.year) * 12 + day.month - self.month
        while self.month_start(k) > day:
            k -= 1
        return k


@dataclass(frozen=True, slots=True)
class MonthUse:
    """How much of one rent month a span uses, and what it costs (exact, before rounding)."""

    month_start: date
    month_end: date
    used_start: date
    used_end: date
    fraction: Fraction

    @property
    def days_used(self) -> int:
        return (self.used_end - self.used_start).days + 1

    @property
    def days_in(self) -> int:
        return (self.month_end - self.month_start).days + 1

    @property
    def full(self) -> bool:
        return self.fraction == 1


_WHOLE = Fraction(1)


def fraction_of_month(method: Proration, days_used: int, days_in: int) -> Fraction:
    if days_used >= days_in:
        return _WHOLE
    if method is Proration.CALENDAR:
        return Fraction(days_used, days_in)
    if method is Proration.THIRTY_DAY:
        return Fraction(min(days_used, 30), 30)
    return Fraction(days_used * 12, 365)


@dataclass(frozen=True, slots=True)
class Prorated:
    amount: int  # fen, rounded half-up once
    months: tuple[MonthUse, ...]

    def explain(self, monthly_rent: int) -> str:
        """One phrase per rent month: "2026-03-15..2026-03-31 17/31 * 1,800.00"."""
        parts = []
        for m in self.months:
            what = "full month" if m.full else f"{m.fraction} *"
            parts.append(f"{m.used_start}..{m.used_end} {what} {yuan(monthly_rent)}")
        return "; ".join(parts)


def prorate(
    monthly_rent: int, anchor: Anchor, start: date, end: date, method: Proration
) -> Prorated:
    """Rent for the days `start`..`end` (inclusive) of a lease anchored at `anchor`."""
    if end < start:
        raise BillingError(f"span {start}..{end} ends before it starts")
    months: list[MonthUse] = []
    k = anchor.month_index(start)
    day = start
    while day <= end:
        m_start, m_end = anchor.month_start(k), anchor.month_start(k + 1) - DAY
        used_end = min(m_end, end)
        days_used = (used_end - day).days + 1
        days_in = (m_end - m_start).days + 1
        frac = fraction_of_month(method, days_used, days_in)
        months.append(MonthUse(m_start, m_end, day, used_end, frac))
        day, k = used_end + DAY, k + 1
    # whole months stay integers; Fractions only for partial ones (a run prorates every lease)
    partial = [m.fraction for m in months if m.fraction is not _WHOLE]
    whole = (len(months) - len(partial)) * monthly_rent
    if not partial:
        return Prorated(whole, tuple(months))
    return Prorated(round_half_up(whole + sum(partial) * monthly_rent), tuple(months))
