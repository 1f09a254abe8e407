"""The lease state machine: draft → signed → active → ended, or terminated early.

Pure: the caller passes the current status, the dates and `today`; a refused step raises
IllegalTransitionError naming what is allowed from here.
"""

from __future__ import annotations

import calendar
import enum
from dataclasses import dataclass
from datetime import date, timedelta

from cloud.models.leases import LeaseStatus
from protocols.errors import AnjuError


class Action(enum.StrEnum):
    SIGN = "sign"
    ACTIVATE = "activate"
    END = "end"
    TERMINATE = "terminate"
    RENEW = "renew"


TRANSITIONS: dict[tuple[LeaseStatus, Action], LeaseStatus] = {
    (LeaseStatus.DRAFT, Action.SIGN): LeaseStatus.SIGNED,
    (LeaseStatus.SIGNED, Action.ACTIVATE): LeaseStatus.ACTIVE,
    (LeaseStatus.SIGNED, Action.TERMINATE): LeaseStatus.TERMINATED,  # called off before move-in
    (LeaseStatus.ACTIVE, Action.END): LeaseStatus.ENDED,
    (LeaseStatus.ACTIVE, Action.TERMINATE): LeaseStatus.TERMINATED,
}
# Renewal leaves the old lease as it is and creates a new draft linked to it.
RENEWABLE = frozenset({LeaseStatus.SIGNED, LeaseStatus.ACTIVE, LeaseStatus.ENDED})


class IllegalTransitionError(AnjuError):
    def __init__(self, status: LeaseStatus, action: Action, reason: str) -> None:
        super().__init__(f"cannot {action} a {status} lease: {reason}")
        self.status = status
        self.action = action
        self.reason = reason


def allowed_actions(status: LeaseStatus) -> list[Action]:
    actions = [a for (s, a) in TRANSITIONS if s == status]
    if status in RENEWABLE:
        actions.append(Action.RENEW)
    return actions


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive


def next_status(
    status: LeaseStatus,
    action: Action,
    *,
    period: Period,
    today: date,
    terminated_on: date | None = None,
) -> LeaseStatus:
    """The status after `action`, or IllegalTransitionError."""
    if action is Action.RENEW:
        raise IllegalTransitionError(status, action, "use renewal_period(); renew keeps the status")
    target = TRANSITIONS.get((status, action))
    if target is None:
        allowed = ", ".join(allowed_actions(status)) or "nothing (final)"
        raise IllegalTransitionError(status, action, f"allowed from {status}: {allowed}")
    if action is Action.ACTIVATE and today < period.start:
        raise IllegalTransitionError(status, action, f"the lease starts on {period.start}")
    if action is Action.END and today < period.end:
        raise IllegalTransitionError(
            status, action, f"the lease runs until {period.end}; terminate it to end early"
        )
    if action is Action.TERMINATE:
        if terminated_on is None:
            raise IllegalTransitionError(status, action, "the last day occupied is required")
        if terminated_on >= period.end:
            raise IllegalTransitionError(
                status, action, f"{terminated_on} is not before the end date {period.end}; end it"
            )
        if status is LeaseStatus.ACTIVE and terminated_on < period.start:
            raise IllegalTransitionError(status, action, "the last day precedes the start")
    return target


def renewal_period(status: LeaseStatus, period: Period, months: int) -> Period:
    """The period of a renewal: starts the day after the old end, runs `months` months."""
    if status not in RENEWABLE:
        raise IllegalTransitionError(status, Action.RENEW, f"a {status} lease cannot be renewed")
    if not 1 <= months <= 120:
        raise IllegalTransitionError(status, Action.RENEW, "renewal must be 1-120 months")
    start = period.end + timedelta(days=1)
    return Period(start, add_months(start, months) - timedelta(days=1))


def add_months(day: date, months: int) -> date:
    """Same day-of-month `months` later, clamped to the month's last day (Jan 31 + 1 = Feb 28)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
