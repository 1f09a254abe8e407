"""Gateways and what they send: readings (idempotent on gateway + seq) and rejected messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
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

from cloud.db import Base


class Gateway(Base):
    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # Contiguous high-water mark: every uplink record with seq <= stored_seq is stored.
    stored_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    online: Mapped[bool] = mapped_column(default=False)


class Reading(Base):
    __tablename__ = "readings"
    __table_args__ = (
        UniqueConstraint("gateway_id", "seq", name="uq_readings_gateway_seq"),
        Index("ix_readings_meter_ts", "meter_id", "ts"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), index=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    meter_id: Mapped[str] = mapped_column(String(64))
    point: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float(precision=53))
    unit: Mapped[str] = mapped_column(String(16), default="")
    quality: Mapped[str] = mapped_column(String(16), default="good")
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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
