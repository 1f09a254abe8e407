"""Gateway health: keep the samples (at a bounded rate) and raise or clear the fleet's alarms
through the maintenance alarm service.

- `gateway_offline` is cleared as soon as a gateway says it is online again; it is raised by the
  alarm rules (cloud.maintenance.rules) only once the gateway has been offline or unheard for
  the grace period (`ANJU_ALARMS_OFFLINE_MIN`), so a restart or a short network outage raises
  nothing;
- `gateway_disk_low` while the store's disk has less than DISK_LOW_PERCENT free;
- `outbox_backlog` when the backlog is above BACKLOG_RECORDS and grew over the last
  BACKLOG_SAMPLES samples; the alarm rules clear it once the backlog is down to their
  `backlog_rows` (never above BACKLOG_RECORDS), so the two never take turns;
- `meter_silent` for each meter the gateway reports offline, keyed `<gateway>/<meter>`.

Alarms belong to an organisation, so a gateway not yet placed in a property raises none.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db import as_utc
from cloud.maintenance import alarms
from cloud.maintenance.rules import BACKLOG_RECORDS
from cloud.models import Alarm, Gateway, GatewayHealth, Property
from cloud.quarantine import Reject
from protocols.mqtt.health import MIN_HEALTH_INTERVAL_S, Health, MeterStatus
from protocols.mqtt.messages import State

# A sample this soon after the one kept before is dropped (a little slack for jitter).
MIN_INTERVAL = timedelta(seconds=MIN_HEALTH_INTERVAL_S * 0.9)
DISK_LOW_PERCENT = 10.0
BACKLOG_SAMPLES = 3


@dataclass(frozen=True, slots=True)
class GatewayAlarms:
    """One gateway's alarms in its organisation, as of `now` (the cloud's clock)."""

    session: Session
    gateway: Gateway
    org_id: int
    now: datetime

    def set(self, kind: str, key: str, on: bool, subject: str = "") -> None:
        if on:
            alarms.raise_alarm(
                self.session, self.org_id, kind, key, subject, now=self.now,
                property_id=self.gateway.property_id, detail={"gateway_id": self.gateway.id},
            )  # fmt: skip
        else:
            alarms.clear_alarm(self.session, self.org_id, kind, key, now=self.now)


def gateway_alarms(session: Session, gid: str, now: datetime) -> GatewayAlarms | None:
    """None for an unknown gateway or one not placed in a property (no organisation)."""
    gateway = session.get(Gateway, gid)
    if gateway is None or gateway.property_id is None:
        return None
    prop = session.get(Property, gateway.property_id)
    return GatewayAlarms(session, gateway, prop.org_id, now) if prop is not None else None


def state_alarms(session: Session, states: Sequence[State], now: datetime) -> None:
    """A gateway back online clears its offline alarm at once (the newest state of each
    gateway in the batch); raising waits for the grace period (the rules)."""
    newest = {s.gateway_id: s for s in sorted(states, key=lambda s: s.ts)}
    for gid, state in newest.items():
        fleet = gateway_alarms(session, gid, now) if state.online else None
        if fleet is not None:
            fleet.set("gateway_offline", gid, False)


def _recent(session: Session, gid: str, count: int) -> list[GatewayHealth]:
    return list(
        session.scalars(
            select(GatewayHealth)
            .where(GatewayHealth.gateway_id == gid)
            .order_by(GatewayHealth.received.desc(), GatewayHealth.id.desc())
            .limit(count)
        )
    )


def store_health(
    session: Session, samples: Sequence[tuple[str, bytes, Health]], received: datetime
) -> tuple[int, list[Reject]]:
    """Keep each sample of a known gateway unless one was kept less than MIN_INTERVAL ago;
    returns (kept, rejects)."""
    kept, rejects = 0, []
    for topic_name, payload, sample in samples:
        gateway = session.get(Gateway, sample.gateway_id)
        if gateway is None:
            detail = f"gateway {sample.gateway_id!r} is not registered"
            rejects.append(Reject(topic_name, "unknown_gateway", detail, payload))
            continue
        recent = _recent(session, gateway.id, BACKLOG_SAMPLES - 1)
        if recent and received - as_utc(recent[0].received) < MIN_INTERVAL:
            continue
        offline = [m for m in sample.meters if m.status is MeterStatus.OFFLINE]
        row = GatewayHealth(
            gateway_id=gateway.id,
            ts=sample.ts,
            received=received,
            version=sample.version,
            started=sample.started,
            uptime_s=sample.uptime_s,
            cpu_percent=sample.cpu_percent,
            memory_percent=sample.memory_percent,
            memory_available_mb=sample.memory_available_mb,
            disk_free_mb=sample.disk_free_mb,
            disk_free_percent=sample.disk_free_percent,
            temperature_c=sample.temperature_c,
            pending=sample.pending,
            dropped=sample.dropped,
            meters_offline=len(offline),
            detail={
                "buses": [b.model_dump(mode="json") for b in sample.buses],
                "doors": [d.model_dump(mode="json") for d in sample.doors],
                "meters": [
                    m.model_dump(mode="json")
                    for m in sample.meters
                    if m.status is not MeterStatus.OK
                ],
            },
        )
        session.add(row)
        kept += 1
        fleet = gateway_alarms(session, gateway.id, received)
        if fleet is not None:
            _health_alarms(fleet, sample, [r.pending for r in recent])
    return kept, rejects


def backlog_growing(pending: int, before: Sequence[int]) -> bool:
    """Above the threshold and grown at every one of the last samples (newest first)."""
    series = [pending, *before]
    return (
        pending > BACKLOG_RECORDS
        and len(series) >= BACKLOG_SAMPLES
        and all(a > b for a, b in itertools.pairwise(series))
    )


def _health_alarms(fleet: GatewayAlarms, sample: Health, before: list[int]) -> None:
    gid = fleet.gateway.id
    low = sample.disk_free_percent < DISK_LOW_PERCENT
    fleet.set(
        "gateway_disk_low", gid, low, f"gateway {gid}: {sample.disk_free_percent:.1f}% disk free"
    )
    if backlog_growing(sample.pending, before):
        subject = f"gateway {gid}: {sample.pending} records waiting and growing"
        fleet.set("outbox_backlog", gid, True, subject)
    silent = {m.id for m in sample.meters if m.status is MeterStatus.OFFLINE}
    for meter in sorted(silent):
        subject = f"meter {meter} on gateway {gid} does not answer"
        fleet.set("meter_silent", f"{gid}/{meter}", True, subject)
    prefix = f"{gid}/"
    still_open = fleet.session.scalars(
        select(Alarm.key).where(
            Alarm.org_id == fleet.org_id,
            Alarm.kind == "meter_silent",
            Alarm.state.in_(alarms.OPEN),
            Alarm.key.startswith(prefix, autoescape=True),
        )
    ).all()
    for key in still_open:
        if key.removeprefix(prefix) not in silent:
            fleet.set("meter_silent", key, False)
