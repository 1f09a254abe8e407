"""The business calendar the SLA clock counts in: weekdays, minus public holidays, plus the
make-up working days (调休) that fall on weekends. Pure: dates in, datetimes out; no clock.

A year's holidays are announced by the State Council each November, so they are data
(`holidays_cn.json`, overridden per year in the database), not code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_MINUTES = 366 * 24 * 60  # an SLA longer than a year is a configuration error
MAX_DAYS_SCANNED = 3 * 366  # a calendar with no working day ahead stops here


class CalendarError(ValueError):
    """A year's data that cannot be a calendar (a date in the wrong year, a day both ways)."""


@dataclass(frozen=True, slots=True)
class YearDays:
    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]  # weekend days worked instead (调休)

    @classmethod
    def parse(cls, year: int, holidays: Iterable[str], workdays: Iterable[str]) -> YearDays:
        """From ISO dates; each must lie in `year`, and no day may be both."""
        if not 2000 <= year <= 2100:
            raise CalendarError(f"year {year} out of range")
        try:
            off = frozenset(date.fromisoformat(d) for d in holidays)
            on = frozenset(date.fromisoformat(d) for d in workdays)
        except (TypeError, ValueError) as exc:
            raise CalendarError(f"not an ISO date: {exc}") from None
        stray = sorted(d for d in off | on if d.year != year)
        if stray:
            raise CalendarError(f"dates outside {year}: {stray[:3]}")
        if off & on:
            raise CalendarError(f"both holiday and working day: {sorted(off & on)[:3]}")
        if len(off) > 60 or len(on) > 20:
            raise CalendarError("too many special days for one year")
        return cls(year, off, on)


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    years: Mapping[int, YearDays]
    opens: time = time(9, 0)
    closes: time = time(18, 0)
    tz: ZoneInfo = SHANGHAI

    def is_business_day(self, day: date) -> bool:
        known = self.years.get(day.year)
        if known is not None:
            if day in known.workdays:
                return True
            if day in known.holidays:
                return False
        return day.weekday() < 5

    def add_business_minutes(self, start: datetime, minutes: int) -> datetime:
        """The moment `minutes` of working time after `start` (UTC). Time outside opening
        hours, weekends and holidays does not count; a start outside hours counts from the
        next opening."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if not 0 <= minutes <= MAX_MINUTES:
            raise ValueError(f"minutes out of range: {minutes}")
        local = start.astimezone(self.tz)
        left = timedelta(minutes=minutes)
        day = local.date()
        for _ in range(MAX_DAYS_SCANNED):
            if self.is_business_day(day):
                opening = datetime.combine(day, self.opens, self.tz)
                closing = datetime.combine(day, self.closes, self.tz)
                begin = max(opening, local)
                if begin < closing:
                    if begin + left <= closing:
                        return (begin + left).astimezone(UTC)
                    left -= closing - begin
            day += timedelta(days=1)
        raise ValueError("no working time within three years")


def default_years() -> dict[int, YearDays]:
    """The years shipped with Anju (the official 国务院办公厅 notices)."""
    raw = json.loads(resources.files(__package__).joinpath("holidays_cn.json").read_text("utf-8"))
    return {
        int(y): YearDays.parse(int(y), v["holidays"], v["workdays"])
        for y, v in raw.items()
        if not y.startswith("_")
    }
