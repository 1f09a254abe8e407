"""The business calendar: holidays, make-up working days and opening hours."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cloud.maintenance.calendar import (
    SHANGHAI,
    BusinessCalendar,
    CalendarError,
    YearDays,
    default_years,
)

CAL = BusinessCalendar(default_years())


def local(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=SHANGHAI)


def test_holidays_and_make_up_days_of_2026() -> None:
    assert not CAL.is_business_day(date(2026, 10, 1))  # National Day, a Thursday
    assert CAL.is_business_day(date(2026, 10, 10))  # a Saturday worked (调休)
    assert CAL.is_business_day(date(2026, 2, 14))  # Saturday before the Spring Festival
    assert not CAL.is_business_day(date(2026, 2, 23))  # a Monday in the Spring Festival
    assert not CAL.is_business_day(date(2026, 3, 7))  # an ordinary Saturday
    assert CAL.is_business_day(date(2026, 3, 9))


def test_counts_only_opening_hours() -> None:
    # Friday 17:00 + 2 h → Monday 10:00
    due = CAL.add_business_minutes(local(2026, 3, 6, 17), 120)
    assert due == local(2026, 3, 9, 10).astimezone(UTC)
    # before opening counts from 09:00
    assert CAL.add_business_minutes(local(2026, 3, 9, 6), 30) == local(2026, 3, 9, 9, 30)
    # exactly one working day ends at closing the same day
    assert CAL.add_business_minutes(local(2026, 3, 9, 9), 540) == local(2026, 3, 9, 18)


def test_skips_the_holiday_week_and_works_the_make_up_saturday() -> None:
    # Wed 30 Sep 17:00 + 2 h: the Golden Week is off, Thu 8 Oct opens
    due = CAL.add_business_minutes(local(2026, 9, 30, 17), 120)
    assert due == local(2026, 10, 8, 10)
    # Fri 9 Oct 17:30 + 1 h: Saturday 10 Oct is a working day
    assert CAL.add_business_minutes(local(2026, 10, 9, 17, 30), 60) == local(2026, 10, 10, 9, 30)


def test_an_unknown_year_has_weekends_only() -> None:
    assert CAL.is_business_day(date(2031, 10, 1))  # a Wednesday, not yet announced
    assert not CAL.is_business_day(date(2031, 10, 4))


@pytest.mark.parametrize(
    ("holidays", "workdays"),
    [(["2027-01-01"], []), (["2026-01-01"], ["2026-01-01"]), (["2026-13-01"], []), (["x"], []),
     ([f"2026-{m:02d}-{d:02d}" for m in (1, 2, 3) for d in range(1, 29)], [])],
)  # fmt: skip
def test_refuses_bad_year_data(holidays: list[str], workdays: list[str]) -> None:
    with pytest.raises(CalendarError):
        YearDays.parse(2026, holidays, workdays)


def test_refuses_naive_and_huge_inputs() -> None:
    with pytest.raises(ValueError, match="aware"):
        CAL.add_business_minutes(datetime(2026, 3, 9, 9), 1)  # noqa: DTZ001
    with pytest.raises(ValueError, match="range"):
        CAL.add_business_minutes(local(2026, 3, 9), 10**9)
