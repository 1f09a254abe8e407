"""The room board's state rule: lease status, days to its end and overdue balance."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from cloud.leases.board import UnitState, unit_state
from cloud.models import LeaseStatus, UnitStatus

TODAY = date(2026, 3, 10)
ACTIVE, OCC = LeaseStatus.ACTIVE, UnitStatus.OCCUPIED


@pytest.mark.parametrize(
    ("status", "lease", "days_left", "overdue", "state"),
    [
        (UnitStatus.VACANT, None, None, 0, UnitState.VACANT),
        (UnitStatus.RESERVED, None, None, 0, UnitState.RESERVED),
        (UnitStatus.MAINTENANCE, None, None, 0, UnitState.MAINTENANCE),
        (UnitStatus.VACANT, LeaseStatus.DRAFT, 300, 0, UnitState.SIGNING),
        (UnitStatus.RESERVED, LeaseStatus.SIGNED, 300, 0, UnitState.TO_MOVE_IN),
        (OCC, ACTIVE, 61, 0, UnitState.OCCUPIED),
        (OCC, ACTIVE, 60, 0, UnitState.EXPIRING_60),
        (OCC, ACTIVE, 30, 0, UnitState.EXPIRING_30),
        (OCC, ACTIVE, 0, 0, UnitState.EXPIRING_30),  # the last day is still inside the lease
        (OCC, ACTIVE, 10, 1, UnitState.ARREARS),  # money outranks expiry
        (OCC, ACTIVE, -1, 500, UnitState.OVERSTAYING),  # past the end: move-out first
    ],
)
def test_unit_state(
    status: UnitStatus,
    lease: LeaseStatus | None,
    days_left: int | None,
    overdue: int,
    state: UnitState,
) -> None:
    end = None if days_left is None else TODAY + timedelta(days=days_left)
    assert unit_state(status, lease, end, overdue, TODAY) is state
