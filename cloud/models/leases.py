"""Leases: a unit let to a primary tenant (plus co-tenants) for a period, money in integer fen."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.models.base import Base
from cloud.models.portfolio import str_enum


class LeaseStatus(enum.StrEnum):
    DRAFT = "draft"
    SIGNED = "signed"
    ACTIVE = "active"
    ENDED = "ended"
    TERMINATED = "terminated"  # ended early


class Proration(enum.StrEnum):
    CALENDAR_DAYS = "calendar_days"  # monthly rent x days occupied / days in that month
    THIRTY_DAY = "thirty_day"  # monthly rent x days / 30
    ANNUAL_365 = "annual_365"  # monthly rent x 12 x days / 365


class Lease(Base):
    __tablename__ = "leases"
    __table_args__ = (
        CheckConstraint("end_date > start_date", name="ck_leases_period"),
        CheckConstraint("rent_fen >= 0 AND deposit_fen >= 0", name="ck_leases_money"),
        CheckConstraint("payment_cycle_months IN (1, 2, 3, 6, 12)", name="ck_leases_cycle"),
        CheckConstraint("occupant_count >= 1", name="ck_leases_occupants"),
        CheckConstraint("due_days_before >= 0", name="ck_leases_due_days"),
        Index("ix_leases_property_status", "property_id", "status"),
        Index("ix_leases_unit", "unit_id"),
        Index("ix_leases_primary_tenant", "primary_tenant_id"),
        UniqueConstraint("org_id", "external_ref", name="uq_leases_org_external_ref"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The property's organisation, repeated so an old system's id is unique per organisation.
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    primary_tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    status: Mapped[LeaseStatus] = mapped_column(
        str_enum(LeaseStatus, "lease_status"), default=LeaseStatus.DRAFT
    )
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)  # last day of occupancy, inclusive
    occupant_count: Mapped[int] = mapped_column(Integer, default=1)
    rent_fen: Mapped[int] = mapped_column(Integer)  # per month
    deposit_fen: Mapped[int] = mapped_column(Integer)
    payment_cycle_months: Mapped[int] = mapped_column(Integer, default=1)
    # Due rule: each bill is due this many days before its period starts.
    due_days_before: Mapped[int] = mapped_column(Integer, default=7)
    proration: Mapped[Proration] = mapped_column(
        str_enum(Proration, "proration"), default=Proration.CALENDAR_DAYS
    )
    # Late-fee policy (billing's table); None = the property's or organisation's policy.
    late_fee_policy_id: Mapped[int | None] = mapped_column(Integer)
    renewed_from_id: Mapped[int | None] = mapped_column(ForeignKey("leases.id"))
    signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # For early termination: the last day actually occupied and why.
    terminated_on: Mapped[date | None] = mapped_column(Date)
    termination_reason: Mapped[str] = mapped_column(Text, default="")
    external_ref: Mapped[str | None] = mapped_column(String(64))  # the old system's id
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LeaseTenant(Base):
    """Co-tenants of a lease (the primary tenant is on the lease row itself)."""

    __tablename__ = "lease_tenants"

    lease_id: Mapped[int] = mapped_column(
        ForeignKey("leases.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True, index=True)


class ContractSignature(Base):
    """Who signed which rendering of the e-contract, and when (hash of the exact PDF bytes)."""

    __tablename__ = "contract_signatures"

    id: Mapped[int] = mapped_column(primary_key=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"), index=True)
    signer_name: Mapped[str] = mapped_column(String(100))
    signer_tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"))
    signer_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    language: Mapped[str] = mapped_column(String(8))
    document_sha256: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ip: Mapped[str] = mapped_column(String(64), default="")
