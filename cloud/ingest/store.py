"""Database side of ingest: plain functions over a session; the caller commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cloud.models import Gateway, Quarantine, Reading
from protocols.errors import AnjuError
from protocols.mqtt.messages import Telemetry


class UnknownGatewayError(AnjuError):
    pass


def insert_ignoring_duplicates(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING on the table's unique keys, on SQLite and PostgreSQL."""
    if not rows:
        return
    stmt: Insert
    if session.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    session.execute(stmt, rows)


def store_telemetry(session: Session, message: Telemetry, received: datetime) -> int:
    """Store a telemetry batch; returns the gateway's new contiguous high-water mark."""
    gateway = session.execute(
        select(Gateway).where(Gateway.id == message.gateway_id).with_for_update()
    ).scalar_one_or_none()
    if gateway is None:
        raise UnknownGatewayError(f"gateway {message.gateway_id!r} is not registered")
    insert_ignoring_duplicates(
        session,
        Reading.__table__,
        [
            {
                "gateway_id": message.gateway_id,
                "seq": r.seq,
                "meter_id": r.meter,
                "point": r.point,
                "value": r.value,
                "unit": r.unit,
                "quality": r.quality.value,
                "ts": r.ts,
            }
            for r in message.readings
        ],
    )
    floor = max(gateway.stored_seq, message.base_seq)
    if message.readings[0].seq <= floor + 1:
        gateway.stored_seq = max(floor, message.readings[-1].seq)
    gateway.last_seen = received
    return gateway.stored_seq


def quarantine(
    session: Session, *, topic: str, reason: str, detail: str, payload: bytes, received: datetime
) -> None:
    session.add(
        Quarantine(
            received=received,
            topic=topic[:300],
            reason=reason,
            detail=detail,
            payload=payload[:65536].decode("utf-8", errors="replace"),
        )
    )


def register_gateway(session: Session, gateway_id: str, name: str = "") -> Gateway:
    gateway = session.get(Gateway, gateway_id)
    if gateway is None:
        gateway = Gateway(id=gateway_id, name=name or gateway_id, stored_seq=0, online=False)
        session.add(gateway)
    return gateway
