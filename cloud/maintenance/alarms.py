"""Alarms: raised once per (organisation, kind, key) while open, acknowledged and resolved by
people, cleared automatically when the condition goes away. Kinds that need a repair open a
work order, which is cancelled if the alarm clears before anyone started on it.

Other modules raise their own alarms with `raise_alarm` / `clear_alarm`; both are idempotent, so
a checker may call them on every pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.maintenance import orders
from cloud.maintenance.notify import deliveries
from cloud.maintenance.sla import load_calendar
from cloud.models import Alarm, AlarmState, Category, OrderSource, OrderState, Priority, WorkOrder
from cloud.security import audit
from cloud.security.authz import Principal

KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_KEY = 128
MAX_SUBJECT = 300
OPEN = (AlarmState.ACTIVE, AlarmState.ACKNOWLEDGED)


@dataclass(frozen=True, slots=True)
class Kind:
    category: Category
    priority: Priority
    opens_order: bool  # a repair is needed, not only attention
    severity: str = "warning"


KINDS: dict[str, Kind] = {
    "meter_silent": Kind(Category.METER, Priority.HIGH, opens_order=True),
    "meter_comm_errors": Kind(Category.METER, Priority.NORMAL, opens_order=True),
    "vacant_consumption": Kind(Category.OTHER, Priority.HIGH, opens_order=False),
    "usage_spike": Kind(Category.OTHER, Priority.NORMAL, opens_order=False),
    "gateway_offline": Kind(Category.NETWORK, Priority.URGENT, True, severity="critical"),
    "outbox_backlog": Kind(Category.NETWORK, Priority.HIGH, opens_order=False),
    "door_forced": Kind(Category.DOOR, Priority.URGENT, False, severity="critical"),
    "door_held_open": Kind(Category.DOOR, Priority.NORMAL, opens_order=False),
    "door_refusals": Kind(Category.DOOR, Priority.NORMAL, opens_order=False),
    "lock_battery_low": Kind(Category.DOOR, Priority.NORMAL, opens_order=True),
    "part_low_stock": Kind(Category.OTHER, Priority.NORMAL, opens_order=False),
}
DEFAULT_KIND = Kind(Category.OTHER, Priority.NORMAL, opens_order=False)


class AlarmError(ValueError):
    """A kind, key or subject that cannot be stored."""


def check(kind: str, key: str, subject: str) -> None:
    if not KIND_RE.match(kind):
        raise AlarmError(f"bad alarm kind {kind[:40]!r}")
    if not key or len(key) > MAX_KEY or "\x00" in key:
        raise AlarmError("alarm key must be 1..128 characters without NUL")
    if len(subject) > MAX_SUBJECT or "\x00" in subject:
        raise AlarmError("alarm subject must be at most 300 characters without NUL")


def open_alarm(session: Session, org_id: int, kind: str, key: str) -> Alarm | None:
    return session.scalars(
        select(Alarm).where(
            Alarm.org_id == org_id, Alarm.kind == kind, Alarm.key == key, Alarm.state.in_(OPEN)
        )
    ).one_or_none()


def raise_alarm(
    session: Session,
    org_id: int,
    kind: str,
    key: str,
    subject: str,
    *,
    now: datetime,
    property_id: int | None = None,
    unit_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> Alarm:
    """The open alarm for (org, kind, key), raised now if there is none. Idempotent."""
    check(kind, key, subject)
    existing = open_alarm(session, org_id, kind, key)
    if existing is not None:
        return existing
    spec = KINDS.get(kind, DEFAULT_KIND)
    alarm = Alarm(
        org_id=org_id, property_id=property_id, unit_id=unit_id, kind=kind, key=key,
        subject=subject, severity=spec.severity, state=AlarmState.ACTIVE,
        detail=detail or {}, raised_at=now,
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(alarm)
    except IntegrityError:  # another evaluator raised it a moment ago
        raced = open_alarm(session, org_id, kind, key)
        if raced is None:
            raise
        return raced
    if spec.opens_order and property_id is not None:
        order = orders.open_order(
            session, org_id,
            orders.NewOrder(property_id=property_id, category=spec.category,
                            priority=spec.priority, description=subject, unit_id=unit_id),
            source=OrderSource.ALARM, cal=load_calendar(session), now=now, who=None,
            alarm_id=alarm.id,
        )  # fmt: skip
        alarm.work_order_id = order.id
    deliveries.enqueue(session, alarm, "raised", now)
    return alarm


def clear_alarm(
    session: Session, org_id: int, kind: str, key: str, *, now: datetime
) -> Alarm | None:
    """Resolve the open alarm for (org, kind, key) because its condition went away (no-op when
    there is none)."""
    alarm = open_alarm(session, org_id, kind, key)
    if alarm is not None:
        close(session, alarm, now=now, who=None)
    return alarm


def acknowledge(session: Session, alarm: Alarm, *, now: datetime, who: Principal) -> None:
    if alarm.state is not AlarmState.ACTIVE:
        raise AlarmError(f"an {alarm.state} alarm cannot be acknowledged")
    alarm.state = AlarmState.ACKNOWLEDGED
    alarm.acknowledged_at, alarm.acknowledged_by = now, who.user_id
    audit.about(session, who, "alarm.acknowledge", now, alarm, detail={"kind": alarm.kind})


def close(session: Session, alarm: Alarm, *, now: datetime, who: Principal | None) -> None:
    """Resolve by a person (`who`) or automatically (None); an order the alarm opened that
    nobody started is cancelled with it."""
    if alarm.state is AlarmState.RESOLVED:
        raise AlarmError("the alarm is already resolved")
    alarm.state = AlarmState.RESOLVED
    alarm.resolved_at, alarm.resolved_by = now, who.user_id if who else None
    if who is not None:
        audit.about(session, who, "alarm.resolve", now, alarm, detail={"kind": alarm.kind})
    deliveries.enqueue(session, alarm, "resolved", now)
    if alarm.work_order_id is not None:
        order = session.get(WorkOrder, alarm.work_order_id)
        if order is not None and order.state in (OrderState.NEW, OrderState.ASSIGNED):
            orders.step(session, order, OrderState.CANCELLED, now=now, who=who,
                        note="the alarm that opened it cleared")  # fmt: skip
