"""Response and resolution targets per priority, and the calendar they count in.

Urgent orders (a burst pipe, a dead door) run on the wall clock; the others count working
minutes only (09:00-18:00 on business days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.maintenance.calendar import BusinessCalendar, YearDays, default_years
from cloud.models import CalendarYear, OrderState, Priority, WorkOrder

OPEN_STATES = (
    OrderState.NEW,
    OrderState.ASSIGNED,
    OrderState.IN_PROGRESS,
    OrderState.WAITING_PARTS,
    OrderState.REOPENED,
)


@dataclass(frozen=True, slots=True)
class Target:
    respond_min: int
    resolve_min: int
    wall_clock: bool = False


TARGETS: dict[Priority, Target] = {
    Priority.URGENT: Target(respond_min=60, resolve_min=8 * 60, wall_clock=True),
    Priority.HIGH: Target(respond_min=4 * 60, resolve_min=2 * 9 * 60),  # 2 working days
    Priority.NORMAL: Target(respond_min=9 * 60, resolve_min=5 * 9 * 60),
    Priority.LOW: Target(respond_min=2 * 9 * 60, resolve_min=10 * 9 * 60),
}


def load_calendar(session: Session) -> BusinessCalendar:
    """The shipped years, with the years set in the database taking their place."""
    years = default_years()
    for row in session.scalars(select(CalendarYear)):
        years[row.year] = YearDays.parse(row.year, row.holidays, row.workdays)
    return BusinessCalendar(years)


def set_year(session: Session, days: YearDays, now: datetime) -> CalendarYear:
    row = session.get(CalendarYear, days.year) or CalendarYear(year=days.year)
    row.holidays = sorted(d.isoformat() for d in days.holidays)
    row.workdays = sorted(d.isoformat() for d in days.workdays)
    row.updated_at = now
    session.add(row)
    return row


def due_times(
    cal: BusinessCalendar, priority: Priority, start: datetime
) -> tuple[datetime, datetime]:
    """(response due, resolution due) for an order opened at `start`."""
    t = TARGETS[priority]
    if t.wall_clock:
        return start + timedelta(minutes=t.respond_min), start + timedelta(minutes=t.resolve_min)
    return cal.add_business_minutes(start, t.respond_min), cal.add_business_minutes(
        start, t.resolve_min
    )


def flag_overdue(session: Session, now: datetime) -> int:
    """Mark open orders past a due time (unanswered past response, unfinished past
    resolution), set-based; returns how many were newly flagged."""
    late = (WorkOrder.resolution_due < now) | (
        WorkOrder.responded_at.is_(None) & (WorkOrder.response_due < now)
    )
    result = session.execute(
        update(WorkOrder)
        .where(WorkOrder.state.in_(OPEN_STATES), WorkOrder.overdue.is_(False), late)
        .values(overdue=True)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
