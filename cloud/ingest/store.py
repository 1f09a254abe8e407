"""Database side of ingest: plain functions over a session; the caller commits.

`store_batch` takes everything a worker drained from the broker and writes it in one
transaction: an idempotent bulk insert per table (`bulk`), then the contiguous high-water
mark of each gateway store epoch. The worker acknowledges those marks only after the commit.
Readings of a meter bound to another gateway go to quarantine (`foreign_meter`), and are
acknowledged like the rest: sending them again would change nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.access.sync import record_applied
from cloud.db import as_utc
from cloud.db.bulk import insert_new_rows
from cloud.meter_bindings import foreign_pairs
from cloud.models import Event, Gateway, GatewayEpoch, Reading, ServiceAccount
from cloud.quarantine import Reject, quarantine
from cloud.security.broker_credentials import hash_credential
from protocols.errors import AnjuError
from protocols.mqtt import messages as wire
from protocols.mqtt.downlink import Config
from protocols.mqtt.messages import Events, State, Telemetry

Batch = Telemetry | Events
SeqRange = tuple[int, int]  # (after, seq]: every record of the range that exists is stored
MAX_RANGES = 1000  # ranges remembered beyond a mark; the highest beyond it wait for a resend
MAX_NAMED = 20  # meter codes a foreign_meter rejection names (the payload has them all)


@dataclass
class StoreResult:
    # (gateway, epoch) -> stored_seq after commit
    acks: dict[tuple[str, int], int] = field(default_factory=dict)
    stored: int = 0
    duplicates: int = 0
    rejects: list[Reject] = field(default_factory=list)
    command_results: int = 0
    # Desired configs of gateways that report an older one applied: sent again after commit.
    configs_behind: list[Config] = field(default_factory=list)


def _reading_rows(message: Telemetry, readings: list[wire.Reading]) -> list[dict[str, Any]]:
    gid, epoch = message.gateway_id, message.epoch
    return [
        {
            "gateway_id": gid,
            "epoch": epoch,
            "seq": r.seq,
            "meter_id": r.meter,
            "point": r.point,
            "value": r.value,
            "unit": r.unit,
            "quality": r.quality.value,
            "ts": r.ts,
            "text": r.text,
        }
        for r in readings
    ]


def _event_rows(message: Events) -> list[dict[str, Any]]:
    gid, epoch = message.gateway_id, message.epoch
    return [
        {
            "gateway_id": gid,
            "epoch": epoch,
            "seq": e.seq,
            "type": e.type,
            "source": e.source,
            "ts": e.ts,
            "data": e.data,
        }
        for e in message.events
    ]


def advance(stored_seq: int, ranges: Sequence[SeqRange]) -> tuple[int, list[SeqRange]]:
    """Move a contiguous high-water mark across the stored seq ranges `(after, seq]` that touch
    it; return it with the ranges still beyond it, merged where they touch each other."""
    beyond: list[SeqRange] = []
    for after, seq in sorted(ranges):
        if after <= stored_seq:
            stored_seq = max(stored_seq, seq)
        elif beyond and after <= beyond[-1][1]:
            beyond[-1] = (beyond[-1][0], max(beyond[-1][1], seq))
        else:
            beyond.append((after, seq))
    return stored_seq, beyond[:MAX_RANGES]


def store_batch(
    session: Session,
    batches: Sequence[tuple[str, Batch]],
    states: Sequence[tuple[str, State]],
    received: datetime,
) -> StoreResult:
    """Store decoded `(topic, message)` pairs of registered gateways; refuse the others."""
    result = StoreResult()
    gids = sorted({m.gateway_id for _, m in batches} | {s.gateway_id for _, s in states})
    # Row locks in a fixed order: two workers never deadlock, and marks never go backwards.
    gateways = {
        g.id: g
        for g in session.scalars(
            select(Gateway).where(Gateway.id.in_(gids)).order_by(Gateway.id).with_for_update()
        )
    }
    epochs = _epochs(session, gateways)
    readings: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    ranges: dict[tuple[str, int], list[SeqRange]] = defaultdict(list)
    starts: dict[tuple[str, int], int] = defaultdict(int)
    foreign = foreign_pairs(
        session,
        (
            (m.gateway_id, r.meter)
            for _, m in batches
            if isinstance(m, Telemetry) and m.gateway_id in gateways
            for r in m.readings
        ),
    )
    for topic_name, message in batches:
        if message.gateway_id not in gateways:
            result.rejects.append(_unknown(topic_name, message))
            continue
        if isinstance(message, Telemetry):
            own = _own_readings(topic_name, message, foreign, result.rejects)
            readings.extend(_reading_rows(message, own))
        else:
            events.extend(_event_rows(message))
        key = message.gateway_id, message.epoch
        ranges[key].append((message.after, message.seq))
        starts[key] = max(starts[key], message.epoch_start)
    offered = len(readings) + len(events)
    result.stored = insert_new_rows(session, Reading.__table__, readings)  # type: ignore[arg-type]
    result.stored += insert_new_rows(session, Event.__table__, events)  # type: ignore[arg-type]
    result.duplicates = offered - result.stored
    for (gid, epoch), new_ranges in ranges.items():
        gateway = gateways[gid]
        mark = _epoch(session, epochs, gateway, epoch, received, start=starts[gid, epoch])
        mark.stored_seq, beyond = advance(
            mark.stored_seq, [*((a, b) for a, b in mark.ranges), *new_ranges]
        )
        mark.ranges = [list(r) for r in beyond]
        if epoch == gateway.epoch:
            gateway.stored_seq = mark.stored_seq
        gateway.last_seen = received
        result.acks[gid, epoch] = mark.stored_seq
    for topic_name, state in states:
        known = gateways.get(state.gateway_id)
        if known is None:
            result.rejects.append(_unknown(topic_name, state))
        elif known.state_ts is None or state.ts >= as_utc(known.state_ts):
            gateway = known
            mark = _epoch(session, epochs, gateway, state.epoch, received, start=state.epoch_start)
            if state.epoch == gateway.epoch:
                gateway.stored_seq = mark.stored_seq
            _take_state(gateway, state)
            gateway.last_seen = received
            if state.access_version is not None:
                record_applied(session, gateway.id, state.access_version, state.ts)
    quarantine(session, result.rejects, received)
    return result


def _take_state(gateway: Gateway, state: State) -> None:
    gateway.online = state.online
    gateway.state_ts = state.ts
    gateway.pending = state.pending
    gateway.dropped = state.dropped
    gateway.dropped_upto = state.dropped_upto
    if state.config_version is not None or state.config_error is not None:
        gateway.config_version = state.config_version
        gateway.config_error = state.config_error


def _epochs(session: Session, gateways: dict[str, Gateway]) -> dict[tuple[str, int], GatewayEpoch]:
    """The marks of every epoch of these gateways (a handful each: one per store wipe)."""
    rows = session.scalars(select(GatewayEpoch).where(GatewayEpoch.gateway_id.in_(list(gateways))))
    return {(e.gateway_id, e.epoch): e for e in rows}


def _epoch(
    session: Session,
    epochs: dict[tuple[str, int], GatewayEpoch],
    gateway: Gateway,
    epoch: int,
    received: datetime,
    *,
    start: int,
) -> GatewayEpoch:
    """The mark of one epoch, at least its `start` (no record of it has a seq up to there); an
    epoch not seen before is the gateway's newest, and becomes current.

    The caller holds the gateway's row lock, so two workers never create the same epoch.
    """
    mark = epochs.get((gateway.id, epoch))
    if mark is None:
        mark = GatewayEpoch(
            gateway_id=gateway.id, epoch=epoch, stored_seq=start, ranges=[], first_seen=received
        )
        session.add(mark)
        epochs[gateway.id, epoch] = mark
        gateway.epoch = epoch
        gateway.stored_seq = start
    elif mark.stored_seq < start:
        mark.stored_seq = start
    return mark


def _own_readings(
    topic_name: str, message: Telemetry, foreign: set[tuple[str, str]], rejects: list[Reject]
) -> list[wire.Reading]:
    """The message's readings less those of meters bound to other gateways (rejected)."""
    gid = message.gateway_id
    theirs = [r for r in message.readings if (gid, r.meter) in foreign]
    if not theirs:
        return message.readings
    meters = sorted({r.meter for r in theirs})
    named = ", ".join(meters[:MAX_NAMED]) + (", …" if len(meters) > MAX_NAMED else "")
    rejects.append(
        Reject(
            topic_name,
            "foreign_meter",
            f"{len(theirs)} readings of meters not bound to gateway {gid!r}: {named}",
            message.model_copy(update={"readings": theirs}).model_dump_json(by_alias=True).encode(),
        )
    )
    return [r for r in message.readings if (gid, r.meter) not in foreign]


def _unknown(topic_name: str, message: Batch | State) -> Reject:
    return Reject(
        topic_name,
        "unknown_gateway",
        f"gateway {message.gateway_id!r} is not registered",
        message.model_dump_json(by_alias=True).encode(),
    )


# ---- the registry -------------------------------------------------------------------------


def register_gateway(
    session: Session,
    gateway_id: str,
    name: str = "",
    *,
    building: str = "",
    property_id: int | None = None,
    credential: str | None = None,
) -> Gateway:
    """Create or update a gateway; a given credential replaces the stored hash, a given property
    places it there (the API scopes gateways by property)."""
    gateway = session.get(Gateway, gateway_id)
    if gateway is None:
        if session.get(ServiceAccount, gateway_id) is not None:
            raise AnjuError(f"{gateway_id!r} is a service account's name; choose another id")
        gateway = Gateway(
            id=gateway_id,
            name=name or gateway_id,
            property_id=property_id,
            building=building,
            credential_hash="",
            epoch=0,
            stored_seq=0,
            online=False,
            pending=0,
            dropped=0,
            dropped_upto=0,
        )
        session.add(gateway)
    else:
        gateway.name = name or gateway.name
        gateway.building = building or gateway.building
        gateway.property_id = property_id or gateway.property_id
    if credential is not None:
        gateway.credential_hash = hash_credential(credential)
    return gateway
