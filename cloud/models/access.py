"""Doors and who may open them: doors served by gateways, visitor passes, PINs (argon2id hashes
only), the log of offline codes issued, and each gateway's access-list versions.

A door's secret (what offline one-time codes are derived from) and a compiled access list
(face embeddings, PIN hashes, door secrets) are kept only as AES-256-GCM envelopes.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.models.base import Base
from cloud.models.portfolio import str_enum


class DoorScope(enum.StrEnum):
    UNIT = "unit"  # a unit's own door: its lease's tenants
    BUILDING = "building"  # a building's entrance: tenants of every unit in it
    PROPERTY = "property"  # the property's gate: every tenant of the property


class Door(Base):
    __tablename__ = "doors"
    __table_args__ = (
        UniqueConstraint("gateway_id", "code", name="uq_doors_gateway_code"),
        CheckConstraint(
            "(scope = 'unit' AND unit_id IS NOT NULL AND building_id IS NOT NULL)"
            " OR (scope = 'building' AND unit_id IS NULL AND building_id IS NOT NULL)"
            " OR (scope = 'property' AND unit_id IS NULL AND building_id IS NULL)",
            name="ck_doors_scope",
        ),
        Index("ix_doors_property", "property_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    scope: Mapped[DoorScope] = mapped_column(str_enum(DoorScope, "door_scope"))
    # The gateway that drives it, and the door's id in that gateway's configuration.
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100), default="")
    # The offline-code secret, sealed with context "doors.secret:<id>".
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The fingerprint of the key its lock was provisioned with (`anju edge lock provision`):
    # which key the door should answer to, never the key.
    lock_key_fingerprint: Mapped[str | None] = mapped_column(String(16))
    lock_key_registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class VisitorPass(Base):
    """Chosen doors for a window and a number of uses, opened with a code given to the visitor
    once (only its hash is kept)."""

    __tablename__ = "visitor_passes"
    __table_args__ = (
        CheckConstraint("valid_until > valid_from", name="ck_visitor_passes_window"),
        CheckConstraint("max_uses BETWEEN 1 AND 100", name="ck_visitor_passes_uses"),
        Index("ix_visitor_passes_property_until", "property_id", "valid_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    visitor_name: Mapped[str] = mapped_column(String(100))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    max_uses: Mapped[int] = mapped_column(Integer)
    code_hash: Mapped[str] = mapped_column(String(200))  # argon2id PHC string
    # Who issued it: a staff user, or a tenant (through their login) for their own doors.
    issued_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    issued_by_tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class VisitorPassDoor(Base):
    __tablename__ = "visitor_pass_doors"

    pass_id: Mapped[int] = mapped_column(
        ForeignKey("visitor_passes.id", ondelete="CASCADE"), primary_key=True
    )
    door_id: Mapped[int] = mapped_column(
        ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class PinCredential(Base):
    """A keypad PIN of a tenant or a staff user: an argon2id hash, never the PIN."""

    __tablename__ = "pin_credentials"
    __table_args__ = (
        CheckConstraint(
            "(tenant_id IS NULL) != (user_id IS NULL)", name="ck_pin_credentials_subject"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    pin_hash: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OfflineCodeIssue(Base):
    """One offline one-time code a manager issued. The code itself is shown once and not kept;
    the door's id and code are copied so the record outlives the door."""

    __tablename__ = "offline_code_issues"
    __table_args__ = (Index("ix_offline_code_issues_door", "door_id", "issued_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    door_id: Mapped[int] = mapped_column(Integer)
    door_code: Mapped[str] = mapped_column(String(64))
    gateway_id: Mapped[str] = mapped_column(String(64))
    property_id: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    counter: Mapped[int] = mapped_column(BigInteger)
    issued_by: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="")


class GatewayAccess(Base):
    """A gateway's access-list sync: what the cloud compiled and sent, what the gateway applied."""

    __tablename__ = "gateway_access"

    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), primary_key=True)
    compiled_version: Mapped[int] = mapped_column(BigInteger, default=0)
    compiled_hash: Mapped[str] = mapped_column(String(64), default="")
    compiled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The digest of the inputs the last compile read (`sync.Inputs.digest`): a look compiles
    # the gateway again only when it moves, also after the publisher restarts.
    inputs_digest: Mapped[str] = mapped_column(String(64), default="")
    entries: Mapped[int] = mapped_column(Integer, default=0)
    sent_version: Mapped[int] = mapped_column(BigInteger, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # From the gateway's `up/state`.
    applied_version: Mapped[int] = mapped_column(BigInteger, default=0)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccessListVersion(Base):
    """A compiled list as sent, sealed (it holds embeddings and door secrets), kept while a
    gateway may still hold it, so a change travels as a delta against what the gateway has."""

    __tablename__ = "access_list_versions"

    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sha256: Mapped[str] = mapped_column(String(64))
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
