"""Alarms and work orders through the service layer, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.db import as_utc
from cloud.maintenance import alarms, orders
from cloud.maintenance.sla import flag_overdue, load_calendar
from cloud.models import (
    Alarm,
    AlarmState,
    AuditEvent,
    Category,
    OrderSource,
    OrderState,
    Priority,
    WorkOrder,
)
from cloud.security.crypto import FieldKeys
from tests.cloud.world import NOW, World, build_world


@pytest.fixture
def world(session: Session, keys: FieldKeys) -> World:
    return build_world(session, keys)


def test_raise_is_idempotent_and_clearing_cancels_the_untouched_order(
    session: Session, world: World
) -> None:
    p1 = world.sites["P1"]
    first = alarms.raise_alarm(
        session, p1.org_id, "meter_silent", p1.meter_id, "meter silent for 3 polls",
        now=NOW, property_id=p1.property_id, unit_id=p1.unit_id,
    )  # fmt: skip
    again = alarms.raise_alarm(
        session, p1.org_id, "meter_silent", p1.meter_id, "still silent", now=NOW + timedelta(1)
    )
    assert again.id == first.id
    order = session.get_one(WorkOrder, first.work_order_id)
    assert (order.source, order.category, order.state) == (
        OrderSource.ALARM, Category.METER, OrderState.NEW)  # fmt: skip
    assert order.response_due is not None
    assert as_utc(order.response_due) > NOW
    cleared = alarms.clear_alarm(session, p1.org_id, "meter_silent", p1.meter_id, now=NOW)
    assert cleared is not None
    assert cleared.state is AlarmState.RESOLVED
    assert cleared.resolved_by is None
    assert order.state is OrderState.CANCELLED
    assert alarms.clear_alarm(session, p1.org_id, "meter_silent", p1.meter_id, now=NOW) is None
    # the condition comes back: a new alarm
    third = alarms.raise_alarm(session, p1.org_id, "meter_silent", p1.meter_id, "x", now=NOW)
    assert third.id != first.id
    session.commit()
    silent = select(func.count()).select_from(Alarm).where(Alarm.kind == "meter_silent")
    assert session.scalar(silent) == 2


def test_same_key_in_another_organisation_is_another_alarm(session: Session, world: World) -> None:
    p1, p3 = world.sites["P1"], world.sites["P3"]
    a = alarms.raise_alarm(session, p1.org_id, "gateway_offline", "gw-x", "offline", now=NOW)
    b = alarms.raise_alarm(session, p3.org_id, "gateway_offline", "gw-x", "offline", now=NOW)
    assert a.id != b.id


@pytest.mark.parametrize(
    ("kind", "key", "subject"),
    [("Bad Kind", "k", "s"), ("ok", "", "s"), ("ok", "k" * 129, "s"), ("ok", "k\x00", "s"),
     ("ok", "k", "s" * 301)],
)  # fmt: skip
def test_refuses_unstorable_alarms(
    session: Session, world: World, kind: str, key: str, subject: str
) -> None:
    with pytest.raises(alarms.AlarmError):
        alarms.raise_alarm(session, world.sites["P1"].org_id, kind, key, subject, now=NOW)


def test_order_steps_are_checked_and_audited(session: Session, world: World) -> None:
    p1 = world.sites["P1"]
    spec = orders.NewOrder(p1.property_id, Category.PLUMBING, Priority.NORMAL, "leaking tap",
                           unit_id=p1.unit_id)  # fmt: skip
    order = orders.open_order(
        session, p1.org_id, spec, source=OrderSource.STAFF, cal=load_calendar(session),
        now=NOW, who=None,
    )  # fmt: skip
    with pytest.raises(orders.IllegalStepError):
        orders.step(session, order, OrderState.DONE, now=NOW, who=None)
    orders.step(session, order, OrderState.ASSIGNED, now=NOW, who=None, assignee_id=p1.user_id)
    assert order.responded_at == NOW
    orders.step(session, order, OrderState.IN_PROGRESS, now=NOW, who=None)
    assert orders.worker_door_windows(session, [p1.unit_id]) == [
        (order.id, p1.user_id, p1.unit_id, NOW)
    ]
    orders.step(session, order, OrderState.WAITING_PARTS, now=NOW, who=None)
    assert orders.worker_door_windows(session, [p1.unit_id]) == []  # away fetching parts
    orders.step(session, order, OrderState.DONE, now=NOW, who=None)
    assert orders.worker_door_windows(session, [p1.unit_id]) == []
    orders.step(session, order, OrderState.REOPENED, now=NOW, who=None)
    assert order.resolved_at is None
    session.commit()
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.target_type == "work_order",
                                        AuditEvent.target_id == str(order.id))
        .order_by(AuditEvent.id)
    ).all()  # fmt: skip
    steps = ["assigned", "in_progress", "waiting_parts", "done", "reopened"]
    assert actions == ["work_order.open", *(f"work_order.{s}" for s in steps)]


def test_overdue_orders_are_flagged_once(session: Session, world: World) -> None:
    p1 = world.sites["P1"]
    spec = orders.NewOrder(p1.property_id, Category.DOOR, Priority.URGENT, "door won't lock")
    order = orders.open_order(
        session, p1.org_id, spec, source=OrderSource.STAFF, cal=load_calendar(session),
        now=NOW, who=None,
    )  # fmt: skip
    assert order.response_due is not None
    assert as_utc(order.response_due) == NOW + timedelta(hours=1)  # urgent: the wall clock
    session.commit()
    assert flag_overdue(session, NOW + timedelta(minutes=59)) == 0
    assert flag_overdue(session, NOW + timedelta(minutes=61)) == 1
    assert flag_overdue(session, NOW + timedelta(minutes=62)) == 0
    session.commit()
    session.refresh(order)
    assert order.overdue
