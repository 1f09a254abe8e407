"""The fleet: one-time enrolment tokens that let a new gateway fetch its identity, and the
history of what gateways report about their health."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.models.base import Base


class GatewayEnrolment(Base):
    """A token issued for one gateway-to-be. Only the token's SHA-256 is kept (the token is
    256 random bits, so a fast hash is enough); `used_at` is set by the one consume that wins."""

    __tablename__ = "gateway_enrolments"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    gateway_id: Mapped[str] = mapped_column(String(64), index=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    building: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")  # a username, or "cli"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GatewayHealth(Base):
    """One `up/health` sample as the cloud kept it (no more than one per minimum interval)."""

    __tablename__ = "gateway_health"
    __table_args__ = (Index("ix_gateway_health_gateway_received", "gateway_id", "received", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # the gateway's clock
    received: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # ours
    version: Mapped[str] = mapped_column(String(64))
    started: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    uptime_s: Mapped[int] = mapped_column(BigInteger)
    cpu_percent: Mapped[float] = mapped_column(Float)
    memory_percent: Mapped[float] = mapped_column(Float)
    memory_available_mb: Mapped[float] = mapped_column(Float)
    disk_free_mb: Mapped[float] = mapped_column(Float)
    disk_free_percent: Mapped[float] = mapped_column(Float)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    pending: Mapped[int] = mapped_column(BigInteger)
    dropped: Mapped[int] = mapped_column(BigInteger)
    meters_offline: Mapped[int] = mapped_column(Integer)
    # Buses, doors, and the meters that are not ok (the ok ones are counted per bus).
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class GatewayConfigVersion(Base):
    """One desired remote configuration of a gateway (`protocols.mqtt.downlink.Config`'s
    fields but the envelope); the newest version is the one sent. Rows are never changed, so a
    rollback is a new version with an old body."""

    __tablename__ = "gateway_configs"

    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
