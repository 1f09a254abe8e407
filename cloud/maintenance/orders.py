"""Work orders: the state machine (pure) and the steps that move an order, each audited.

new → assigned → in_progress ⇄ waiting_parts → done → confirmed, or done → reopened → assigned …
An order an alarm opened is cancelled if its alarm clears before anyone started on it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db import as_utc
from cloud.maintenance.calendar import BusinessCalendar
from cloud.maintenance.sla import due_times
from cloud.models import (
    Asset,
    Category,
    OrderSource,
    OrderState,
    Priority,
    User,
    WorkOrder,
)
from cloud.security import audit
from cloud.security.authz import Principal

S = OrderState
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.NEW: frozenset({S.ASSIGNED, S.CANCELLED}),
    S.ASSIGNED: frozenset({S.ASSIGNED, S.IN_PROGRESS, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.ASSIGNED, S.WAITING_PARTS, S.DONE}),
    S.WAITING_PARTS: frozenset({S.ASSIGNED, S.IN_PROGRESS, S.DONE}),
    S.DONE: frozenset({S.CONFIRMED, S.REOPENED}),
    S.REOPENED: frozenset({S.ASSIGNED, S.IN_PROGRESS}),
    S.CONFIRMED: frozenset(),
    S.CANCELLED: frozenset(),
}
# What the assigned worker reports; the rest are other people's steps.
WORKER_STEPS = frozenset({S.IN_PROGRESS, S.WAITING_PARTS, S.DONE})
TENANT_STEPS = frozenset({S.CONFIRMED, S.REOPENED})


class IllegalStepError(ValueError):
    def __init__(self, state: OrderState, to: OrderState) -> None:
        super().__init__(f"a {state} order cannot become {to}")
        self.allowed = sorted(TRANSITIONS[state])


@dataclass(frozen=True, slots=True)
class NewOrder:
    property_id: int
    category: Category
    priority: Priority
    description: str
    unit_id: int | None = None
    area: str = ""
    asset_id: int | None = None


def under_warranty(asset: Asset | None, today: date) -> bool:
    return asset is not None and asset.warranty_end is not None and today <= asset.warranty_end


def open_order(
    session: Session,
    org_id: int,
    spec: NewOrder,
    *,
    source: OrderSource,
    cal: BusinessCalendar,
    now: datetime,
    who: Principal | None,
    tenant_id: int | None = None,
    alarm_id: int | None = None,
) -> WorkOrder:
    """A new order with its SLA due times; audited (as "alarms" when an alarm opened it)."""
    asset = session.get(Asset, spec.asset_id) if spec.asset_id is not None else None
    respond, resolve = due_times(cal, spec.priority, now)
    order = WorkOrder(
        org_id=org_id,
        property_id=spec.property_id,
        unit_id=spec.unit_id,
        area=spec.area,
        category=spec.category,
        priority=spec.priority,
        description=spec.description,
        state=S.NEW,
        source=source,
        reported_by=who.user_id if who else None,
        tenant_id=tenant_id,
        alarm_id=alarm_id,
        asset_id=spec.asset_id,
        under_warranty=under_warranty(asset, now.astimezone(cal.tz).date()),
        created_at=now,
        updated_at=now,
        response_due=respond,
        resolution_due=resolve,
        overdue=False,
        rating_comment="",
    )
    session.add(order)
    session.flush()
    record(session, who, "work_order.open", now, order, detail={"source": source})
    return order


def step(
    session: Session,
    order: WorkOrder,
    to: OrderState,
    *,
    now: datetime,
    who: Principal | None,
    assignee_id: int | None = None,
    note: str = "",
) -> WorkOrder:
    """Move an order; `assignee_id` with ASSIGNED. Refused steps raise IllegalStepError."""
    before = order.state
    if to not in TRANSITIONS[before]:
        raise IllegalStepError(before, to)
    if to is S.ASSIGNED:
        if assignee_id is None:
            raise ValueError("assigning needs an assignee")
        order.assignee_id = assignee_id
        if order.responded_at is None:
            order.responded_at = now
    if to is S.DONE:
        order.resolved_at = now
    if to is S.REOPENED:
        order.resolved_at = None
    order.state = to
    order.updated_at = now
    detail: dict[str, Any] = {"from": before, "to": to}
    if assignee_id is not None:
        detail["assignee_id"] = assignee_id
    if note:
        detail["note"] = note
    record(session, who, f"work_order.{to}", now, order, detail=detail)
    return order


def rate(
    session: Session, order: WorkOrder, stars: int, comment: str, *, now: datetime, who: Principal
) -> None:
    """A rating once the work is done (done or confirmed); a second one replaces the first."""
    if order.state not in (S.DONE, S.CONFIRMED):
        raise IllegalStepError(order.state, S.CONFIRMED)
    if not 1 <= stars <= 5:
        raise ValueError("a rating is 1 to 5")
    order.rating, order.rating_comment = stars, comment
    order.updated_at = now
    record(session, who, "work_order.rate", now, order, detail={"rating": stars})


def record(
    session: Session, who: Principal | None, action: str, now: datetime, order: WorkOrder,
    *, detail: dict[str, Any],
) -> None:  # fmt: skip
    if who is not None:
        audit.about(session, who, action, now, order, detail=detail)
    else:
        audit.record(
            session, None, action, now, target_type="work_order", target_id=order.id,
            property_id=order.property_id, username="alarms", detail=detail,
        )  # fmt: skip


class DoorWindow(NamedTuple):
    order_id: int
    worker_id: int
    unit_id: int
    since: datetime  # when the order went in progress


def worker_door_windows(session: Session, unit_ids: Collection[int]) -> list[DoorWindow]:
    """The orders in progress on these units and their active assigned workers: what grants a
    worker a time-boxed right to the unit's doors (`cloud.access.rights`). An order that leaves
    in_progress (waiting for parts, done, reassigned) ends the right."""
    rows = session.execute(
        select(WorkOrder.id, WorkOrder.assignee_id, WorkOrder.unit_id, WorkOrder.updated_at)
        .join(User, User.id == WorkOrder.assignee_id)
        .where(
            WorkOrder.unit_id.in_(sorted(unit_ids)),
            WorkOrder.state == S.IN_PROGRESS,
            User.active.is_(True),
            User.org_id == WorkOrder.org_id,
        )
        .order_by(WorkOrder.id)
    )
    return [
        DoorWindow(order_id, worker, unit, as_utc(since))
        for order_id, worker, unit, since in rows
        if worker is not None and unit is not None
    ]
