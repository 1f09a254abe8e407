"""Alarm rules over what the cloud already stores, evaluated set-based: each rule is one SELECT of
what is firing now (org, property, unit, key, subject); `sync` turns it into alarms raised,
kept, and cleared with a few INSERT … SELECT / UPDATE statements, whatever the number of meters.

Rules:
- meter_silent: a meter bound to a gateway that is online and delivering sent nothing for
  `silent_polls` poll intervals (an offline gateway is one gateway alarm, not a meter storm)
- meter_comm_errors: `bad_readings` or more readings of quality bad in the window
- vacant_consumption: a vacant unit's counter rose by more than `vacant_delta` in the window
- usage_spike: billing held a meter's usage for review (its spike rule), not yet released
- gateway_offline: a placed gateway offline or unheard for `offline_min` minutes
- outbox_backlog: a gateway's outbox holds more than `backlog_rows` unsent records
- door_forced / door_held_open / lock_battery_low: such a lock event in the window
- door_refusals: `refusals` or more denied door decisions in the window
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    Select,
    String,
    and_,
    cast,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from cloud.maintenance.alarms import KINDS
from cloud.maintenance.notify import deliveries
from cloud.maintenance.sla import due_times, load_calendar
from cloud.models import (
    Alarm,
    AlarmState,
    AuditEvent,
    Event,
    Gateway,
    HoldKind,
    Meter,
    OrderSource,
    OrderState,
    Property,
    Reading,
    Unit,
    UnitStatus,
    UsageHold,
    WorkOrder,
)

LOCK_EVENT = "lock.event"
DOOR_DECISION = "door.decision"  # a door deciding from its gallery file
ACCESS_REFUSED = "access.refused"  # a door deciding from the access list


# Gateway health raises `outbox_backlog` above this mark when the backlog keeps growing; the
# rule's own mark (backlog_rows) may not be higher, or the rule would clear what health raised.
BACKLOG_RECORDS = 10_000


@dataclass(frozen=True, slots=True)
class RuleSettings:
    poll_s: int = 300  # the meters' poll interval
    silent_polls: int = 3
    bad_readings: int = 3
    window_min: int = 60  # for errors, consumption and door events
    vacant_delta: float = 1.0  # kWh / m³ a vacant unit may drift by
    counters: tuple[str, ...] = ("import_energy", "total_energy", "positive_total")
    offline_min: int = 10
    backlog_rows: int = 5000
    refusals: int = 5


Rule = Callable[[RuleSettings, datetime], Select[Any]]


def no_unit() -> Any:
    return cast(null(), Integer).label("unit_id")


def text_of(*parts: Any) -> Any:
    out: Any = literal("", String)
    for p in parts:
        out = out + (cast(p, String) if not isinstance(p, str) else literal(p, String))
    return out


def meter_silent(s: RuleSettings, now: datetime) -> Select[Any]:
    since = now - timedelta(seconds=s.poll_s * s.silent_polls)
    heard = exists().where(
        Reading.meter_id == Meter.code, Reading.gateway_id == Meter.gateway_id, Reading.ts > since
    )
    return (
        select(Meter.org_id, Meter.property_id, Meter.unit_id, Meter.code.label("key"),
               text_of("meter ", Meter.code, f" sent nothing for {s.silent_polls} polls")
               .label("subject"))
        .join(Gateway, Gateway.id == Meter.gateway_id)
        .where(Gateway.online.is_(True), Gateway.last_seen > since, ~heard)
    )  # fmt: skip


def meter_comm_errors(s: RuleSettings, now: datetime) -> Select[Any]:
    since = now - timedelta(minutes=s.window_min)
    bad = (
        select(func.count())
        .where(Reading.meter_id == Meter.code, Reading.gateway_id == Meter.gateway_id,
               Reading.ts > since, Reading.quality == "bad")
        .correlate(Meter)
        .scalar_subquery()
    )  # fmt: skip
    return select(
        Meter.org_id, Meter.property_id, Meter.unit_id, Meter.code.label("key"),
        text_of("meter ", Meter.code, " answers with errors").label("subject"),
    ).where(Meter.gateway_id.is_not(None), bad >= s.bad_readings)  # fmt: skip


def vacant_consumption(s: RuleSettings, now: datetime) -> Select[Any]:
    since = now - timedelta(minutes=s.window_min)
    rise = (
        select(func.max(Reading.value) - func.min(Reading.value))
        .where(Reading.meter_id == Meter.code, Reading.gateway_id == Meter.gateway_id,
               Reading.ts > since, Reading.point.in_(s.counters), Reading.quality == "good")
        .correlate(Meter)
        .scalar_subquery()
    )  # fmt: skip
    return (
        select(Meter.org_id, Meter.property_id, Meter.unit_id, Meter.code.label("key"),
               text_of("vacant unit ", Unit.code, ": meter ", Meter.code, " is counting")
               .label("subject"))
        .join(Unit, Unit.id == Meter.unit_id)
        .where(Unit.status == UnitStatus.VACANT, Meter.gateway_id.is_not(None),
               rise > s.vacant_delta)
    )  # fmt: skip


def usage_spike(_s: RuleSettings, _now: datetime) -> Select[Any]:
    return (
        select(Property.org_id, UsageHold.property_id, no_unit(),
               text_of(UsageHold.meter_id, "@", UsageHold.period_start).label("key"),
               text_of("meter ", UsageHold.meter_id, " usage held: ", UsageHold.reason)
               .label("subject"))
        .join(Property, Property.id == UsageHold.property_id)
        .where(UsageHold.kind == HoldKind.USAGE, UsageHold.released.is_(False))
    )  # fmt: skip


def gateway_offline(s: RuleSettings, now: datetime) -> Select[Any]:
    since = now - timedelta(minutes=s.offline_min)
    silent = or_(
        Gateway.last_seen < since, and_(Gateway.online.is_(False), Gateway.state_ts < since)
    )
    return (
        select(Property.org_id, Gateway.property_id, no_unit(),
               Gateway.id.label("key"),
               text_of("gateway ", Gateway.id, f" offline for over {s.offline_min} min")
               .label("subject"))
        .join(Property, Property.id == Gateway.property_id)
        .where(Gateway.last_seen.is_not(None), silent)
    )  # fmt: skip


def outbox_backlog(s: RuleSettings, _now: datetime) -> Select[Any]:
    return (
        select(Property.org_id, Gateway.property_id, no_unit(),
               Gateway.id.label("key"),
               text_of("gateway ", Gateway.id, " has ", Gateway.pending, " records unsent")
               .label("subject"))
        .join(Property, Property.id == Gateway.property_id)
        .where(Gateway.pending > s.backlog_rows)
    )  # fmt: skip


def door_events(kind: str, event: str | None, minimum: int = 1) -> Rule:
    def rule(s: RuleSettings, now: datetime) -> Select[Any]:
        since = now - timedelta(minutes=s.window_min)
        door = Event.data["door"].as_string()
        if event is not None:
            match = and_(Event.type == LOCK_EVENT, Event.data["event"].as_string() == event)
        else:
            match = or_(
                and_(Event.type == DOOR_DECISION, Event.data["verdict"].as_string() == "deny"),
                Event.type == ACCESS_REFUSED,
            )
        key = text_of(Event.gateway_id, "/", func.coalesce(door, ""))
        return (
            select(Property.org_id, Gateway.property_id, no_unit(),
                   key.label("key"),
                   text_of(f"{kind.replace('_', ' ')}: ", key).label("subject"))
            .join(Gateway, Gateway.id == Event.gateway_id)
            .join(Property, Property.id == Gateway.property_id)
            .where(match, Event.ts > since)
            .group_by(Property.org_id, Gateway.property_id, Event.gateway_id, door)
            .having(func.count() >= minimum)
        )  # fmt: skip

    return rule


RULES: dict[str, Rule] = {
    "meter_silent": meter_silent,
    "meter_comm_errors": meter_comm_errors,
    "vacant_consumption": vacant_consumption,
    "usage_spike": usage_spike,
    "gateway_offline": gateway_offline,
    "outbox_backlog": outbox_backlog,
    "door_forced": door_events("door_forced", "forced_open"),
    "door_held_open": door_events("door_held_open", "held_open"),
    "lock_battery_low": door_events("lock_battery_low", "low_battery"),
}


def _meter_keyed() -> Any:
    """An alarm keyed by one of its organisation's meter codes."""
    return exists().where(Meter.org_id == Alarm.org_id, Meter.code == Alarm.key)


# Alarms of these kinds that other code raises under keys of its own (the gateway's health
# report raises `meter_silent` keyed `<gateway>/<meter>`) are not the rule's to clear.
OWNED: dict[str, Callable[[], Any]] = {"meter_silent": _meter_keyed}


def refusals_rule(s: RuleSettings) -> Rule:
    return door_events("door_refusals", None, minimum=s.refusals)


@dataclass(frozen=True, slots=True)
class Outcome:
    raised: int
    cleared: int
    orders: int  # opened for new alarms
    cancelled: int  # orders of cleared alarms nobody had started


def evaluate(
    session: Session, now: datetime, settings: RuleSettings | None = None
) -> dict[str, Outcome]:
    """Every rule once; the caller commits. Statements run on the session's connection (Core):
    ORM objects loaded before are stale afterwards."""
    session.flush()  # Core statements below do not autoflush
    s = settings or RuleSettings()
    rules = {**RULES, "door_refusals": refusals_rule(s)}
    return {kind: sync(session, kind, rule(s, now), now) for kind, rule in rules.items()}


def sync(session: Session, kind: str, firing: Select[Any], now: datetime) -> Outcome:
    """Raise what fires and has no open alarm, clear open alarms that no longer fire (and
    cancel the orders they opened that nobody started), open orders for new repair alarms."""
    f = firing.subquery("firing")
    spec = KINDS[kind]
    is_open = Alarm.state != AlarmState.RESOLVED
    still = exists().where(f.c.org_id == Alarm.org_id, f.c.key == Alarm.key)
    ended = and_(Alarm.kind == kind, is_open, ~still)
    if kind in OWNED:
        ended = and_(ended, OWNED[kind]())
    gone = select(Alarm.id).where(ended)
    ending = [(i, org) for i, org in session.connection().execute(
        select(Alarm.id, Alarm.org_id).where(ended))]  # fmt: skip
    cancelled = cancel_orders(session, gone, now) if ending else 0
    cleared = rowcount(session.connection().execute(
        update(Alarm).where(ended).values(state=AlarmState.RESOLVED, resolved_at=now)
    )) if ending else 0  # fmt: skip
    deliveries.enqueue_many(session, kind, ending, "resolved", now)
    already = exists().where(
        Alarm.org_id == f.c.org_id, Alarm.kind == kind, Alarm.key == f.c.key, is_open
    )
    new = select(
        f.c.org_id, f.c.property_id, f.c.unit_id, literal(kind), func.substr(f.c.key, 1, 128),
        func.substr(f.c.subject, 1, 300), literal(spec.severity),
        literal(AlarmState.ACTIVE.value), literal({}, JSON), literal(now),
    ).where(~already)  # fmt: skip
    cols = ["org_id", "property_id", "unit_id", "kind", "key", "subject", "severity", "state",
            "detail", "raised_at"]  # fmt: skip
    fresh = (
        session.connection()
        .execute(insert(Alarm).from_select(cols, new).returning(Alarm.id, Alarm.org_id))
        .all()
    )
    raised = len(fresh)
    opened = open_orders(session, kind, now) if spec.opens_order and raised else 0
    deliveries.enqueue_many(session, kind, [(i, org) for i, org in fresh], "raised", now)
    return Outcome(raised, cleared, opened, cancelled)


def inserted(session: Session, statement: Any) -> int:
    """Rows an INSERT … SELECT … RETURNING added (its rowcount is -1 on psycopg)."""
    return len(session.connection().execute(statement).all())


def rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def cancel_orders(session: Session, alarm_ids: Select[Any], now: datetime) -> int:
    """Orders opened by these alarms that nobody started: cancelled, and audited."""
    untouched = and_(
        WorkOrder.alarm_id.in_(alarm_ids),
        WorkOrder.state.in_((OrderState.NEW, OrderState.ASSIGNED)),
    )
    audit_orders(session, untouched, "work_order.cancelled", now)
    return rowcount(session.connection().execute(
        update(WorkOrder).where(untouched)
        .values(state=OrderState.CANCELLED, updated_at=now)
    ))  # fmt: skip


def open_orders(session: Session, kind: str, now: datetime) -> int:
    """One work order per alarm of `kind` raised now, linked both ways; audited."""
    spec = KINDS[kind]
    respond, resolve = due_times(load_calendar(session), spec.priority, now)
    fresh = and_(
        Alarm.kind == kind, Alarm.raised_at == now, Alarm.work_order_id.is_(None),
        Alarm.property_id.is_not(None),
    )  # fmt: skip
    rows = select(
        Alarm.org_id, Alarm.property_id, Alarm.unit_id, literal(""), literal(spec.category.value),
        literal(spec.priority.value), Alarm.subject, literal(OrderState.NEW.value),
        literal(OrderSource.ALARM.value), Alarm.id, literal(False), literal(now), literal(now),
        literal(respond), literal(resolve), literal(False), literal(""),
    ).where(fresh)  # fmt: skip
    cols = ["org_id", "property_id", "unit_id", "area", "category", "priority", "description",
            "state", "source", "alarm_id", "under_warranty", "created_at", "updated_at",
            "response_due", "resolution_due", "overdue", "rating_comment"]  # fmt: skip
    n = inserted(session, insert(WorkOrder).from_select(cols, rows).returning(WorkOrder.id))
    link = select(WorkOrder.id).where(WorkOrder.alarm_id == Alarm.id).scalar_subquery()
    session.connection().execute(
        update(Alarm).where(fresh).values(work_order_id=link)
    )  # fmt: skip
    opened = and_(WorkOrder.source == OrderSource.ALARM, WorkOrder.created_at == now,
                  WorkOrder.alarm_id.in_(select(Alarm.id).where(Alarm.kind == kind)))  # fmt: skip
    audit_orders(session, opened, "work_order.open", now)
    return n


def audit_orders(session: Session, which: Any, action: str, now: datetime) -> None:
    rows = select(
        literal(now), null(), literal("alarms"), literal(action), literal("work_order"),
        cast(WorkOrder.id, String), WorkOrder.property_id, literal(""), literal("ok"),
        literal('{"source": "alarm"}'),
    ).where(which)  # fmt: skip
    cols = ["ts", "user_id", "username", "action", "target_type", "target_id", "property_id",
            "ip", "outcome", "detail"]  # fmt: skip
    session.connection().execute(insert(AuditEvent).from_select(cols, rows))
