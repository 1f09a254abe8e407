"""The lease state machine, every (status, action) pair, and month arithmetic."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.leases.lifecycle import (
    Action,
    IllegalTransitionError,
    Period,
    add_months,
    allowed_actions,
    next_status,
    renewal_period,
)
from cloud.models import LeaseStatus

S = LeaseStatus
PERIOD = Period(date(2026, 3, 1), date(2027, 2, 28))
EXPECTED = {
    (S.DRAFT, Action.SIGN): S.SIGNED,
    (S.SIGNED, Action.ACTIVATE): S.ACTIVE,
    (S.SIGNED, Action.TERMINATE): S.TERMINATED,
    (S.ACTIVE, Action.END): S.ENDED,
    (S.ACTIVE, Action.TERMINATE): S.TERMINATED,
}


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("action", [a for a in Action if a is not Action.RENEW])
def test_every_pair(status: LeaseStatus, action: Action) -> None:
    today = date(2027, 3, 1)  # after the end: dates never block here
    expected = EXPECTED.get((status, action))
    if expected is None:
        with pytest.raises(IllegalTransitionError, match=f"cannot {action} a {status} lease"):
            next_status(status, action, period=PERIOD, today=today, terminated_on=date(2026, 6, 1))
    else:
        got = next_status(
            status, action, period=PERIOD, today=today, terminated_on=date(2026, 6, 1)
        )
        assert got is expected


def test_dates_gate_activation_and_end() -> None:
    with pytest.raises(IllegalTransitionError, match="starts on 2026-03-01"):
        next_status(S.SIGNED, Action.ACTIVATE, period=PERIOD, today=date(2026, 2, 28))
    assert next_status(S.SIGNED, Action.ACTIVATE, period=PERIOD, today=date(2026, 3, 1)) is S.ACTIVE
    with pytest.raises(IllegalTransitionError, match="terminate it to end early"):
        next_status(S.ACTIVE, Action.END, period=PERIOD, today=date(2027, 2, 27))
    with pytest.raises(IllegalTransitionError, match="not before the end date"):
        next_status(
            S.ACTIVE, Action.TERMINATE, period=PERIOD, today=PERIOD.start, terminated_on=PERIOD.end
        )
    with pytest.raises(IllegalTransitionError, match="last day occupied is required"):
        next_status(S.ACTIVE, Action.TERMINATE, period=PERIOD, today=PERIOD.start)


def test_final_states_allow_only_renewal_or_nothing() -> None:
    assert allowed_actions(S.TERMINATED) == []
    assert allowed_actions(S.ENDED) == [Action.RENEW]
    assert Action.RENEW in allowed_actions(S.ACTIVE)


def test_renewal_period_follows_on() -> None:
    assert renewal_period(S.ACTIVE, PERIOD, 12) == Period(date(2027, 3, 1), date(2028, 2, 29))
    with pytest.raises(IllegalTransitionError):
        renewal_period(S.DRAFT, PERIOD, 12)
    with pytest.raises(IllegalTransitionError):
        renewal_period(S.TERMINATED, PERIOD, 12)


def test_add_months_clamps() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)), st.integers(0, 240))
def test_add_months_properties(day: date, months: int) -> None:
    out = add_months(day, months)
    assert (out.year - day.year) * 12 + out.month - day.month == months
    assert out.day <= day.day
    assert out.day == day.day or (out + (date(2000, 1, 2) - date(2000, 1, 1))).day == 1
