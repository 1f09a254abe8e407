"""Daily usage of a meter, and of a unit's meter chain, for charts: each day is the span billing
would price over that one local day (the same boundary readings, rollover and swap arithmetic),
so a chart never disagrees with an invoice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.billing.errors import ReadingRejectedError
from cloud.billing.service.meters import ReadingBook, SubMeter, UnitMeters, span_usage, unit_meters
from cloud.meter_bindings import reading_of
from cloud.models import Meter, Reading

MAX_DAYS = 92  # a chart's reach: one query per day boundary


@dataclass(frozen=True, slots=True)
class DayUsage:
    day: date
    # None: no reading before a boundary (within billing's lookback), or one billing rejects
    quantity: Decimal | None


def counter_point(session: Session, meter: Meter, counters: tuple[str, ...]) -> str | None:
    """The counter (of `counters`) the meter reported last; None if it reported none."""
    return session.scalar(
        select(Reading.point)
        .where(reading_of(meter), Reading.point.in_(counters), Reading.value.is_not(None))
        .order_by(Reading.ts.desc())
        .limit(1)
    )


def meter_days(
    session: Session, meter: Meter, point: str, *, last: date, days: int, tz: ZoneInfo
) -> list[DayUsage]:
    """The meter's own usage per local day, `days` days up to and including `last`."""
    alone = SubMeter(meter.code, meter.unit_id or 0, meter.utility, meter.digits)
    return _days(ReadingBook(session, meter.property_id), UnitMeters((alone,), {}), point,
                 last=last, days=days, tz=tz)  # fmt: skip


def unit_days(
    session: Session, meter: Meter, point: str, *, last: date, days: int, tz: ZoneInfo
) -> list[DayUsage]:
    """The usage of the meter's unit (of the meter's utility) per local day across the unit's
    meter chain, swaps included; empty for a master meter."""
    if meter.unit_id is None:
        return []
    chain = unit_meters(session, meter.property_id).get((meter.unit_id, meter.utility))
    if chain is None:
        return []
    return _days(ReadingBook(session, meter.property_id), chain, point, last=last, days=days, tz=tz)


def _days(
    book: ReadingBook, chain: UnitMeters, point: str, *, last: date, days: int, tz: ZoneInfo
) -> list[DayUsage]:
    days = max(1, min(days, MAX_DAYS))
    out = []
    for back in range(days - 1, -1, -1):
        day = last - timedelta(days=back)
        try:
            used: Decimal | None = span_usage(book, chain, point, day, day, tz=tz).usage.quantity
        except ReadingRejectedError:  # a missing or backwards reading: a gap, not a zero
            used = None
        out.append(DayUsage(day, used))
    return out
