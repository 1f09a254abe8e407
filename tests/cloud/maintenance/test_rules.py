"""The alarm rules over stored readings, gateway state and events, on both databases."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.maintenance import alarms, rules
from cloud.models import (
    Alarm,
    AlarmDelivery,
    AlarmState,
    AlarmSubscription,
    Event,
    Gateway,
    OrderState,
    Reading,
    Unit,
    UnitStatus,
    User,
    WorkOrder,
)
from cloud.security.crypto import FieldKeys
from tests.cloud.world import NOW, World, build_world

S = rules.RuleSettings()


@pytest.fixture
def world(session: Session, keys: FieldKeys) -> World:
    return build_world(session, keys)


SEQ = itertools.count(1)


def reading(gateway: str, meter: str, ts: datetime, value: float, **kw: str) -> Reading:
    return Reading(gateway_id=gateway, epoch=1, seq=next(SEQ), meter_id=meter,
                   point=kw.get("point", "import_energy"), value=value, unit="kWh",
                   quality=kw.get("quality", "good"), ts=ts)  # fmt: skip


def open_alarms(session: Session, kind: str) -> list[Alarm]:
    q = select(Alarm).where(Alarm.kind == kind, Alarm.state != AlarmState.RESOLVED)
    return list(session.scalars(q))


def silent_for_hours(session: Session, world: World) -> dict[str, rules.Outcome]:
    """P1's meter last heard two hours ago behind its online gateway; one evaluation."""
    p1 = world.sites["P1"]
    gw = session.get_one(Gateway, p1.gateway_id)
    gw.online, gw.last_seen = True, NOW
    session.add(reading(gw.id, p1.meter_id, NOW - timedelta(hours=2), 10.0))
    session.commit()
    out = rules.evaluate(session, NOW)
    session.commit()
    return out


def test_a_silent_meter_raises_once_opens_an_order_and_clears(
    session: Session, world: World
) -> None:
    p1 = world.sites["P1"]
    gw = session.get_one(Gateway, p1.gateway_id)
    out = silent_for_hours(session, world)
    assert (out["meter_silent"].raised, out["meter_silent"].orders) == (1, 1)
    [alarm] = open_alarms(session, "meter_silent")
    assert (alarm.key, alarm.property_id, alarm.unit_id) == (
        p1.meter_id,
        p1.property_id,
        p1.unit_id,
    )
    order = session.get_one(WorkOrder, alarm.work_order_id)
    assert (order.alarm_id, order.state, order.category) == (alarm.id, OrderState.NEW, "meter")
    # still silent a minute later: nothing new
    later = NOW + timedelta(minutes=1)
    gw.last_seen = later
    assert rules.evaluate(session, later)["meter_silent"].raised == 0
    # it speaks again: cleared, and the untouched order cancelled
    session.add(reading(gw.id, p1.meter_id, later, 11.0))
    session.commit()
    out = rules.evaluate(session, later + timedelta(seconds=1))
    session.commit()
    assert (out["meter_silent"].cleared, out["meter_silent"].cancelled) == (1, 1)
    session.refresh(order)
    assert order.state is OrderState.CANCELLED
    assert open_alarms(session, "meter_silent") == []


def test_what_the_rules_raise_and_clear_reaches_the_subscribers(
    session: Session, world: World
) -> None:
    p1 = world.sites["P1"]
    gw = session.get_one(Gateway, p1.gateway_id)
    silent_for_hours(session, world)
    [alarm] = open_alarms(session, "meter_silent")

    def queued() -> list[tuple[int, str]]:
        return [(sub, event) for sub, event in session.execute(
            select(AlarmDelivery.subscription_id, AlarmDelivery.event)
            .where(AlarmDelivery.alarm_id == alarm.id).order_by(AlarmDelivery.id))]  # fmt: skip

    # P1's and P2's managers subscribed to every kind (tests.cloud.world); P3's org is not told
    subs = session.scalars(
        select(AlarmSubscription.id)
        .join(User, User.id == AlarmSubscription.user_id)
        .where(User.org_id == p1.org_id)
        .order_by(AlarmSubscription.id)
    ).all()
    assert len(subs) == 2
    assert queued() == [(s, "raised") for s in subs]
    rules.evaluate(session, NOW + timedelta(minutes=1))  # still silent: nothing more
    assert queued() == [(s, "raised") for s in subs]
    session.add(reading(gw.id, p1.meter_id, NOW + timedelta(minutes=2), 11.0))
    session.commit()
    rules.evaluate(session, NOW + timedelta(minutes=2))
    session.commit()
    assert queued() == [(s, "raised") for s in subs] + [(s, "resolved") for s in subs]


def test_the_rules_leave_the_health_reports_silent_meters_alone(
    session: Session, world: World
) -> None:
    """The gateway's health report raises `meter_silent` as `<gateway>/<meter>`: the rule has
    no such key among what fires, and clearing it each run would raise it (and a new order)
    again at the next report."""
    p1 = world.sites["P1"]
    reported = alarms.raise_alarm(session, p1.org_id, "meter_silent", f"{p1.gateway_id}/m9",
                                  "meter m9 does not answer", now=NOW,
                                  property_id=p1.property_id)  # fmt: skip
    session.commit()
    out = rules.evaluate(session, NOW + timedelta(minutes=5))
    session.commit()
    assert out["meter_silent"].cleared == 0
    session.refresh(reported)
    assert reported.state is AlarmState.ACTIVE


def test_an_offline_gateway_is_one_alarm_not_a_meter_storm(session: Session, world: World) -> None:
    p1 = world.sites["P1"]
    gw = session.get_one(Gateway, p1.gateway_id)
    gw.online, gw.last_seen, gw.state_ts = False, NOW - timedelta(minutes=30), NOW
    session.commit()
    out = rules.evaluate(session, NOW + timedelta(minutes=11))
    assert out["gateway_offline"].raised == 1
    assert out["meter_silent"].raised == 0
    gw.online, gw.last_seen = True, NOW + timedelta(minutes=12)
    session.add(reading(gw.id, p1.meter_id, NOW + timedelta(minutes=12), 1.0))
    assert rules.evaluate(session, NOW + timedelta(minutes=12))["gateway_offline"].cleared == 1


def test_errors_vacant_use_backlog_and_doors(session: Session, world: World) -> None:
    p1, p2 = world.sites["P1"], world.sites["P2"]
    gw = session.get_one(Gateway, p1.gateway_id)
    gw.online, gw.last_seen, gw.pending = True, NOW, S.backlog_rows + 1
    session.get_one(Unit, p1.unit_id).status = UnitStatus.VACANT
    for n in range(3):
        t = NOW - timedelta(minutes=10 * n)
        session.add(reading(gw.id, p1.meter_id, t, 100.0 - n * 2))  # counting while vacant
        session.add(reading(gw.id, p1.meter_id, t, 0.0, point="voltage", quality="bad"))
    # refusals by the gallery (door.decision deny) and by the access list (access.refused) add up
    events = [("lock.event", {"door": "front", "event": "forced_open"})] + [
        ("door.decision", {"door": "lobby", "verdict": "deny"})] * (S.refusals - 1) + [
        ("access.refused", {"door": "lobby", "reason": "expired"})]  # fmt: skip
    for seq, (type_, data) in enumerate(events, 1):
        session.add(Event(gateway_id=gw.id, epoch=1, seq=seq, type=type_, source="door",
                          ts=NOW - timedelta(minutes=1), data=data))  # fmt: skip
    # another property's door denies a few times only
    session.add(Event(gateway_id=p2.gateway_id, epoch=1, seq=1, type="door.decision",
                      source="door", ts=NOW, data={"door": "x", "verdict": "deny"}))  # fmt: skip
    session.commit()
    out = rules.evaluate(session, NOW)
    session.commit()
    fired = {k: v.raised for k, v in out.items() if v.raised}
    assert fired == {"meter_comm_errors": 1, "vacant_consumption": 1, "outbox_backlog": 1,
                     "door_forced": 1, "door_refusals": 1, "usage_spike": 3}  # fmt: skip
    [forced] = open_alarms(session, "door_forced")
    assert (forced.key, forced.property_id) == (f"{gw.id}/front", p1.property_id)
    # an hour on, the window has passed: the event alarms clear
    out = rules.evaluate(session, NOW + timedelta(minutes=S.window_min + 1))
    assert out["door_forced"].cleared == out["door_refusals"].cleared == 1


def test_hostile_event_data_is_only_text(session: Session, world: World) -> None:
    """A door name the gateway made up is stored as the key's text, bounded, never run."""
    p1 = world.sites["P1"]
    door = "x'); DROP TABLE alarms; --" + "y" * 300
    data = {"door": door, "event": "forced_open"}
    session.add(Event(gateway_id=p1.gateway_id, epoch=1, seq=1, type="lock.event",
                      source="door", ts=NOW, data=data))  # fmt: skip
    session.commit()
    rules.evaluate(session, NOW)
    session.commit()
    [alarm] = open_alarms(session, "door_forced")
    assert alarm.key == f"{p1.gateway_id}/{door}"[:128]
    assert len(alarm.subject) <= 300
