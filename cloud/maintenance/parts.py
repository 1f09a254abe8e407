"""Spare parts in each property's store: receipts, issues to work orders and returns from them,
the low-stock alarm, and what a repair charges the tenant.

Stock never goes negative: an issue is one conditional UPDATE (`quantity >= n`), so of two
people taking the last unit at once exactly one gets it, on PostgreSQL as on SQLite. Each
movement re-checks the store against the part's reorder level and raises or clears its
`part_low_stock` alarm (`cloud.maintenance.alarms`). The caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cloud.billing import bounds
from cloud.billing.service.repairs import repair_key
from cloud.db.bulk import insert_ignoring_duplicates
from cloud.maintenance import alarms
from cloud.models import (
    InvoiceLine,
    Lease,
    LeaseStatus,
    LineKind,
    OrderState,
    PartMovement,
    PartStock,
    SparePart,
    WorkOrder,
)
from cloud.security import audit
from cloud.security.authz import Principal

LOW_STOCK = "part_low_stock"
MAX_MOVE = 100_000  # units in one movement
S = OrderState
# Parts go out to (and come back from) an order while work on it is open.
ISSUING = frozenset({S.ASSIGNED, S.IN_PROGRESS, S.WAITING_PARTS, S.REOPENED})
CHARGEABLE = frozenset({S.DONE, S.CONFIRMED})
CHARGED_LEASES = (LeaseStatus.SIGNED, LeaseStatus.ACTIVE)


class PartsError(ValueError):
    """A movement or charge the rules refuse (the API answers 409)."""


def _stock_row(session: Session, part_id: int, property_id: int) -> None:
    insert_ignoring_duplicates(
        session,
        PartStock.__table__,
        [{"part_id": part_id, "property_id": property_id, "quantity": 0}],
    )


def on_hand(session: Session, part_id: int, property_id: int) -> int:
    got = session.scalar(
        select(PartStock.quantity).where(
            PartStock.part_id == part_id, PartStock.property_id == property_id
        )
    )
    return int(got or 0)


def _check_quantity(quantity: int) -> None:
    if not 1 <= quantity <= MAX_MOVE:
        raise PartsError(f"a movement is 1 to {MAX_MOVE} units")


def _move(
    session: Session, part: SparePart, property_id: int, delta: int, kind: str, *,
    order_id: int | None, now: datetime, who: Principal,
) -> PartMovement:  # fmt: skip
    """Change the store by `delta` in one statement that refuses to go below zero."""
    _stock_row(session, part.id, property_id)
    done = session.execute(
        update(PartStock)
        .where(
            PartStock.part_id == part.id,
            PartStock.property_id == property_id,
            PartStock.quantity + delta >= 0,
        )
        .values(quantity=PartStock.quantity + delta)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        have = on_hand(session, part.id, property_id)
        raise PartsError(f"only {have} {part.unit} of {part.code} in the store")
    move = PartMovement(
        part_id=part.id, property_id=property_id, order_id=order_id, kind=kind,
        quantity=delta, price_fen=part.price_fen, by_user=who.user_id, at=now,
    )  # fmt: skip
    session.add(move)
    session.flush()
    check_low(session, part, property_id, now=now)
    return move


def check_low(session: Session, part: SparePart, property_id: int, *, now: datetime) -> None:
    """Raise the store's low-stock alarm below the reorder level, clear it at or above."""
    key = f"{part.code}@{property_id}"[: alarms.MAX_KEY]
    have = on_hand(session, part.id, property_id)
    if have < part.reorder_level:
        subject = (
            f"{part.name} ({part.code}): {have} {part.unit} left, reorder at {part.reorder_level}"
        )
        alarms.raise_alarm(
            session, part.org_id, LOW_STOCK, key, subject[: alarms.MAX_SUBJECT], now=now,
            property_id=property_id, detail={"part_id": part.id, "on_hand": have},
        )  # fmt: skip
    else:
        alarms.clear_alarm(session, part.org_id, LOW_STOCK, key, now=now)


def receive(
    session: Session, part: SparePart, property_id: int, quantity: int, *, now: datetime,
    who: Principal,
) -> PartMovement:  # fmt: skip
    _check_quantity(quantity)
    move = _move(session, part, property_id, quantity, "receipt", order_id=None, now=now, who=who)
    audit.record(
        session, who, "part.receive", now, target_type="spare_part", target_id=part.id,
        property_id=property_id, detail={"quantity": quantity},
    )  # fmt: skip
    return move


def issued(session: Session, order_id: int, part_id: int) -> int:
    """Units of a part out on an order (issued less returned)."""
    got = session.scalar(
        select(func.coalesce(func.sum(PartMovement.quantity), 0)).where(
            PartMovement.order_id == order_id, PartMovement.part_id == part_id
        )
    )
    return -int(got or 0)


def to_order(
    session: Session, order: WorkOrder, part: SparePart, quantity: int, *, returning: bool,
    now: datetime, who: Principal,
) -> PartMovement:  # fmt: skip
    """Issue parts from the order's property store to the order, or return unused ones."""
    _check_quantity(quantity)
    if part.org_id != order.org_id:
        raise LookupError("no such part")
    if order.state not in ISSUING:
        raise PartsError(f"parts move only while the order is open, not {order.state}")
    if order.charge_fen and _invoiced(session, order):
        raise PartsError("the order's charge is invoiced")
    if returning and quantity > issued(session, order.id, part.id):
        raise PartsError(f"only {issued(session, order.id, part.id)} {part.unit} are out")
    delta, kind = (quantity, "return") if returning else (-quantity, "issue")
    move = _move(session, part, order.property_id, delta, kind, order_id=order.id, now=now,
                 who=who)  # fmt: skip
    audit.about(session, who, f"work_order.parts_{kind}", now, order,
                detail={"part": part.code, "quantity": quantity})  # fmt: skip
    return move


def parts_cost(session: Session, order_id: int) -> int:
    """What the parts out on an order cost, at their prices when issued (fen)."""
    got = session.scalar(
        select(func.coalesce(func.sum(-PartMovement.quantity * PartMovement.price_fen), 0)).where(
            PartMovement.order_id == order_id
        )
    )
    return int(got or 0)


def _invoiced(session: Session, order: WorkOrder) -> bool:
    if order.charge_lease_id is None:
        return False
    found = session.scalar(
        select(InvoiceLine.id).where(
            InvoiceLine.lease_id == order.charge_lease_id,
            InvoiceLine.kind == LineKind.ADJUSTMENT,
            InvoiceLine.meter_key == repair_key(order.id),
        )
    )
    return found is not None


def lease_of(session: Session, order: WorkOrder, day: date) -> Lease | None:
    """The signed or active lease of the order's unit on `day` (the tenant to charge)."""
    if order.unit_id is None:
        return None
    return session.scalars(
        select(Lease)
        .where(
            Lease.unit_id == order.unit_id,
            Lease.status.in_(CHARGED_LEASES),
            Lease.start_date <= day,
            Lease.end_date >= day,
        )
        .order_by(Lease.id)
    ).first()


@dataclass(frozen=True, slots=True)
class Charge:
    parts_fen: int
    labour_fen: int
    total_fen: int
    lease_id: int | None
    invoiced: bool


def charge_of(session: Session, order: WorkOrder) -> Charge:
    parts = parts_cost(session, order.id)
    return Charge(parts, order.labour_fen, order.charge_fen, order.charge_lease_id,
                  _invoiced(session, order))  # fmt: skip


def charge(
    session: Session, order: WorkOrder, labour_fen: int, *, today: date, now: datetime,
    who: Principal,
) -> Charge:  # fmt: skip
    """Charge the tenant parts + labour on their lease's next bill (a billing run writes the
    line). Zero withdraws a charge; an invoiced charge stands."""
    bounds.check_fen(labour_fen, "labour")
    if order.state not in CHARGEABLE:
        raise PartsError(f"an order is charged once done, not {order.state}")
    if _invoiced(session, order):
        raise PartsError("the order's charge is invoiced already")
    lease = lease_of(session, order, today)
    if lease is None:
        raise PartsError("the order's unit has no signed or active lease to charge")
    total = bounds.check_fen(parts_cost(session, order.id) + labour_fen, "charge")
    order.labour_fen, order.charge_fen = labour_fen, total
    order.charge_lease_id = lease.id if total else None
    order.updated_at = now
    detail = {"labour_fen": labour_fen, "total_fen": total, "lease_id": lease.id}
    audit.about(session, who, "work_order.charge", now, order, detail=detail)
    return charge_of(session, order)
