"""The room-status board (房态图): one state per unit from its lease, its unit status and its
overdue balance. `unit_state` is the rule; `board` loads a building's units in three queries."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.models import Invoice, InvoiceStatus, Lease, LeaseStatus, Unit, UnitStatus

EXPIRING_SOON_DAYS = 30
EXPIRING_LATER_DAYS = 60
# A unit's latest lease in one of these says who has it now.
CURRENT = (LeaseStatus.DRAFT, LeaseStatus.SIGNED, LeaseStatus.ACTIVE)


class UnitState(enum.StrEnum):
    VACANT = "vacant"
    RESERVED = "reserved"
    SIGNING = "signing"  # a draft lease awaits signature
    TO_MOVE_IN = "to_move_in"  # signed, not yet activated
    OCCUPIED = "occupied"
    ARREARS = "arrears"  # occupied, with a balance past its due date
    EXPIRING_30 = "expiring_30"
    EXPIRING_60 = "expiring_60"
    OVERSTAYING = "overstaying"  # the lease ended but the tenant has not checked out
    MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class BoardUnit:
    unit_id: int
    code: str
    floor: int
    layout: str
    state: UnitState
    lease_id: int | None
    end_date: date | None
    overdue_fen: int


PENDING = {LeaseStatus.SIGNED: UnitState.TO_MOVE_IN, LeaseStatus.DRAFT: UnitState.SIGNING}
BY_UNIT_STATUS = {
    UnitStatus.RESERVED: UnitState.RESERVED,
    UnitStatus.MAINTENANCE: UnitState.MAINTENANCE,
}


def unit_state(
    status: UnitStatus, lease: LeaseStatus | None, end: date | None, overdue_fen: int, today: date
) -> UnitState:
    if lease is LeaseStatus.ACTIVE and end is not None:
        return _let_state((end - today).days, overdue_fen)
    if lease in PENDING:
        return PENDING[lease]
    return BY_UNIT_STATUS.get(status, UnitState.VACANT)


def _let_state(days_left: int, overdue_fen: int) -> UnitState:
    """Arrears outrank expiry (money first); an active lease past its end is overstaying."""
    if days_left < 0:
        return UnitState.OVERSTAYING
    if overdue_fen > 0:
        return UnitState.ARREARS
    if days_left <= EXPIRING_SOON_DAYS:
        return UnitState.EXPIRING_30
    if days_left <= EXPIRING_LATER_DAYS:
        return UnitState.EXPIRING_60
    return UnitState.OCCUPIED


def board(session: Session, building_id: int, today: date) -> list[BoardUnit]:
    """A building's units by floor and code, each with its state."""
    units = session.execute(
        select(Unit.id, Unit.code, Unit.floor, Unit.layout, Unit.status)
        .where(Unit.building_id == building_id)
        .order_by(Unit.floor.desc(), Unit.code)
    ).all()
    ids = [u.id for u in units]
    leases: dict[int, tuple[int, LeaseStatus, date]] = {}
    rank = {LeaseStatus.ACTIVE: 3, LeaseStatus.SIGNED: 2, LeaseStatus.DRAFT: 1}
    for lease_id, unit_id, status, end in session.execute(
        select(Lease.id, Lease.unit_id, Lease.status, Lease.end_date).where(
            Lease.unit_id.in_(ids), Lease.status.in_(CURRENT)
        )
    ):
        held = leases.get(unit_id)
        if held is None or rank[status] > rank[held[1]]:
            leases[unit_id] = (lease_id, status, end)
    lease_ids = [lease[0] for lease in leases.values()]
    overdue: dict[int, int] = {}
    for owing_lease, owed in session.execute(
        select(Invoice.lease_id, func.sum(Invoice.total_fen - Invoice.paid_fen))
        .where(
            Invoice.lease_id.in_(lease_ids),
            Invoice.status == InvoiceStatus.OPEN,
            Invoice.due_date < today,
        )
        .group_by(Invoice.lease_id)
    ):
        overdue[owing_lease] = int(owed or 0)
    out = []
    for u in units:
        current: tuple[int | None, LeaseStatus | None, date | None] = leases.get(
            u.id, (None, None, None)
        )
        held_by, lease_status, lease_end = current
        owed = overdue.get(held_by, 0) if held_by is not None else 0
        out.append(
            BoardUnit(
                unit_id=u.id,
                code=u.code,
                floor=u.floor,
                layout=u.layout,
                state=unit_state(u.status, lease_status, lease_end, owed, today),
                lease_id=held_by,
                end_date=lease_end,
                overdue_fen=owed,
            )
        )
    return out
