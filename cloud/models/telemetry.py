"""Gateways and what they send: readings and events (idempotent on gateway + epoch + seq),
rejects.

Readings and events share the gateway's one `seq` space per store `epoch` (a wiped gateway
store starts a new epoch at seq 1), so one mark per epoch covers both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.models.base import Base


class Gateway(Base):
    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # The property it serves: what scopes it in the API (None: not yet placed; CLI only).
    property_id: Mapped[int | None] = mapped_column(
        ForeignKey("properties.id", name="fk_gateways_property_id"), index=True
    )
    building: Mapped[str] = mapped_column(String(200), default="")  # a label for people
    # Hash of the gateway's MQTT password, its username being the id (cloud/security/
    # broker_credentials.py: what the brokers check; never the secret); "" = none yet
    credential_hash: Mapped[str] = mapped_column(String(200), default="")
    # The newest store epoch seen from this gateway, and its mark (a copy of its GatewayEpoch).
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    stored_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # From the gateway's retained state (its Will says offline when the link dies).
    online: Mapped[bool] = mapped_column(default=False)
    state_ts: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    dropped: Mapped[int] = mapped_column(BigInteger, default=0)
    dropped_upto: Mapped[int] = mapped_column(BigInteger, default=0)
    # The remote configuration the gateway reports applied, and why the newest offered was not.
    config_version: Mapped[int | None] = mapped_column(BigInteger)
    config_error: Mapped[str | None] = mapped_column(Text)


class ServiceAccount(Base):
    """A cloud service's MQTT login (ingest, the command sender): reads every gateway's uplink,
    writes downlink (protocols/mqtt/acl.py). Names share the broker's usernames with gateway ids."""

    __tablename__ = "service_accounts"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    credential_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GatewayEpoch(Base):
    """Ingest's marks for one incarnation of a gateway's store."""

    __tablename__ = "gateway_epochs"

    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # Contiguous high-water mark: every uplink record of this epoch with seq <= it is stored.
    stored_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # Seq ranges `(after, seq]` stored beyond the mark (delivered out of order), merged; the
    # mark crosses them as soon as the gap before them is filled, without waiting for a resend.
    # The column keeps its first name, `spans`.
    ranges: Mapped[list[list[int]]] = mapped_column("spans", JSON, default=list)
    first_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Reading(Base):
    __tablename__ = "readings"
    __table_args__ = (
        UniqueConstraint("gateway_id", "epoch", "seq", name="uq_readings_gateway_epoch_seq"),
        Index("ix_readings_meter_ts", "meter_id", "ts"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), index=False)
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    seq: Mapped[int] = mapped_column(BigInteger)
    meter_id: Mapped[str] = mapped_column(String(64))
    point: Mapped[str] = mapped_column(String(64))
    # A number in `value`, or text (a meter's serial, firmware) in `text`: one of the two.
    value: Mapped[float | None] = mapped_column(Float(precision=53))
    unit: Mapped[str] = mapped_column(String(16), default="")
    quality: Mapped[str] = mapped_column(String(16), default="good")
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    text: Mapped[str | None] = mapped_column(String(256))


class Event(Base):
    """Something a gateway reported (door opened, access refused, meter alarm)."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("gateway_id", "epoch", "seq", name="uq_events_gateway_epoch_seq"),
        Index("ix_events_source_ts", "source", "ts"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"))
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Quarantine(Base):
    """Messages ingest refused, kept with the reason for an operator to inspect."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    received: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    topic: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
