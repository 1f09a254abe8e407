"""Billing records: tariffs, late-fee policies, runs, invoices and their lines, payments, prepaid
accounts, deposit settlements, meter swaps, usage holds, the notification outbox and job locks.

Money is integer fen. An invoice line says what it is (rent period, meter with the readings used,
common-area share with method and basis, late fee, adjustment); its natural key makes billing
idempotent: the same rent period or meter month can be billed to a lease only once.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.models.base import Base
from cloud.models.portfolio import Utility, str_enum

BigId = BigInteger().with_variant(Integer(), "sqlite")
MeterValue = Numeric(18, 4)  # a meter's register value, or a quantity of it


class TariffKind(enum.StrEnum):
    FLAT = "flat"
    TIERED = "tiered"
    TIME_OF_USE = "time_of_use"


class LineKind(enum.StrEnum):
    RENT = "rent"
    DEPOSIT = "deposit"
    UTILITY = "utility"
    COMMON_AREA = "common_area"
    LATE_FEE = "late_fee"
    ADJUSTMENT = "adjustment"
    DEPOSIT_SETTLEMENT = "deposit_settlement"


class HoldKind(enum.StrEnum):
    """What a usage hold keeps from billing until an operator looks at it."""

    USAGE = "usage"  # a spike or an unreadable meter: one meter line
    BACK_RENT = "back_rent"  # rent periods older than the run bills at once (meter_id "")
    ERROR = "error"  # an item the run could not bill (a bad stored value); tried again each run


class InvoiceStatus(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"
    VOID = "void"


class Tariff(Base):
    """A utility's price at a property from `effective_from` until the next tariff starts."""

    __tablename__ = "tariffs"
    __table_args__ = (
        UniqueConstraint("property_id", "utility", "effective_from", name="uq_tariffs_effective"),
        CheckConstraint("owner_share_bp BETWEEN 0 AND 10000", name="ck_tariffs_owner_share"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    utility: Mapped[Utility] = mapped_column(str_enum(Utility, "tariff_utility"))
    effective_from: Mapped[date] = mapped_column(Date)
    kind: Mapped[TariffKind] = mapped_column(str_enum(TariffKind, "tariff_kind"))
    # [{"lower": "0", "upper": "100", "price": "0.10"}, ...] in yuan per unit; one row for FLAT;
    # for TIME_OF_USE: [{"zone": "peak", "point": "import_peak", "price": "0.80"}, ...].
    tiers: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    point: Mapped[str] = mapped_column(String(64))  # the reading point that counts usage
    # Common area: how the building's losses are shared, and the price the operator pays.
    common_basis: Mapped[str] = mapped_column(String(16), default="area")
    common_price: Mapped[str] = mapped_column(String(24), default="0")  # yuan per unit
    # RUBS: the part of the common-area cost the owner absorbs, in basis points (10,000 = all),
    # before the rest is shared by the basis (vacant units' shares go to the owner as well).
    owner_share_bp: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    spike_multiple: Mapped[str] = mapped_column(String(12), default="3")


class LateFeePolicyRow(Base):
    """A late-fee rule: an organisation default (property_id NULL), a property's, or a lease's
    (referenced from `leases.late_fee_policy_id`)."""

    __tablename__ = "late_fee_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    property_id: Mapped[int | None] = mapped_column(ForeignKey("properties.id"))
    kind: Mapped[str] = mapped_column(String(16))  # fixed | percent
    amount_fen: Mapped[int] = mapped_column(Integer, default=0)
    rate: Mapped[str] = mapped_column(String(24), default="0")  # exact fraction, e.g. "5/10000"
    mode: Mapped[str] = mapped_column(String(16), default="once")  # once | daily
    grace_days: Mapped[int] = mapped_column(Integer, default=0)
    cap_fen: Mapped[int | None] = mapped_column(Integer)
    min_balance_fen: Mapped[int] = mapped_column(Integer, default=1)


class BillingRun(Base):
    __tablename__ = "billing_runs"
    __table_args__ = (UniqueConstraint("property_id", "period", name="uq_billing_runs_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    period: Mapped[str] = mapped_column(String(7))  # "2026-04": April rent, March utilities
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    invoices_created: Mapped[int] = mapped_column(Integer, default=0)
    lines_created: Mapped[int] = mapped_column(Integer, default=0)
    # Operator's part of shared utility costs and anything an operator must look at.
    operator_cost_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # What the property paid for the shared meters' usage (master meters x common price).
    utility_cost_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # What the latest attempt could not bill: [{"lease_id", "item", "reason"}, ...].
    skipped: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        Index("ix_invoices_property_status", "property_id", "status", "due_date"),
        Index("ix_invoices_lease", "lease_id"),
        CheckConstraint("paid_fen >= 0", name="ck_invoices_paid"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("billing_runs.id"))
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[InvoiceStatus] = mapped_column(
        str_enum(InvoiceStatus, "invoice_status"), default=InvoiceStatus.OPEN
    )
    # Late-fee bookkeeping for the daily job (see cloud.billing.late_fees).
    late_fee_through: Mapped[date | None] = mapped_column(Date)
    late_fee_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (
        # What makes billing idempotent: one line per lease, kind, meter and period start.
        UniqueConstraint(
            "lease_id", "kind", "meter_key", "period_start", name="uq_invoice_lines_natural"
        ),
        Index("ix_invoice_lines_invoice", "invoice_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"))
    kind: Mapped[LineKind] = mapped_column(str_enum(LineKind, "line_kind"))
    meter_key: Mapped[str] = mapped_column(String(64), default="")  # meter id, "" if none
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text)
    utility: Mapped[str | None] = mapped_column(String(16))
    previous_reading: Mapped[Decimal | None] = mapped_column(MeterValue)
    current_reading: Mapped[Decimal | None] = mapped_column(MeterValue)
    quantity: Mapped[Decimal | None] = mapped_column(MeterValue)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Payment(Base):
    """Money received for a lease (or its reversal, a negative row pointing at the original)."""

    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_lease", "lease_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    method: Mapped[str] = mapped_column(String(24), default="transfer")
    reference: Mapped[str] = mapped_column(String(100), default="")
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), unique=True)
    note: Mapped[str] = mapped_column(Text, default="")
    # The lease's deposit received (a reversal carries its payment's flag): counted apart so
    # the lease shows what of its deposit is held; on the account it pays like any payment.
    deposit: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class PaymentAllocation(Base):
    __tablename__ = "payment_allocations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)


class PrepaidAccount(Base):
    __tablename__ = "prepaid_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"), unique=True)
    balance_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    low_threshold_fen: Mapped[int] = mapped_column(BigInteger, default=5000)
    cutoff_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Per meter: the last reading charged, and the month-to-date usage for tiered prices.
    last_readings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PrepaidEntry(Base):
    __tablename__ = "prepaid_entries"
    __table_args__ = (UniqueConstraint("account_id", "dedupe_key", name="uq_prepaid_dedupe"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("prepaid_accounts.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # + top-up, - usage
    balance_after_fen: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(String(100))  # reading id or top-up reference
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DepositSettlementRow(Base):
    __tablename__ = "deposit_settlements"

    id: Mapped[int] = mapped_column(primary_key=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"), unique=True)
    deposit_fen: Mapped[int] = mapped_column(BigInteger)
    refund_fen: Mapped[int] = mapped_column(BigInteger)
    final_bill_fen: Mapped[int] = mapped_column(BigInteger)
    deductions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    final_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    settled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MeterSwap(Base):
    """A meter replaced on a unit: the old meter's final and the new meter's first reading."""

    __tablename__ = "meter_swaps"

    id: Mapped[int] = mapped_column(primary_key=True)
    old_meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), unique=True)
    new_meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), unique=True)
    swapped_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    old_final: Mapped[Decimal] = mapped_column(MeterValue)
    new_initial: Mapped[Decimal] = mapped_column(MeterValue)


class UsageHold(Base):
    """Billing held for review (a spike, a reading that went backwards, back rent, an item the
    run could not bill); released ones bill. Rent holds have meter_id ""."""

    __tablename__ = "usage_holds"
    __table_args__ = (
        UniqueConstraint("lease_id", "meter_id", "period_start", name="uq_usage_holds"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"))
    meter_id: Mapped[str] = mapped_column(String(64))  # the meter's code
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)  # back rent: the last day held
    kind: Mapped[str] = mapped_column(String(16), default=HoldKind.USAGE, server_default="usage")
    reason: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal | None] = mapped_column(MeterValue)
    released: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Notification(Base):
    """Outbox: written in the same transaction as the reason for it, sent later by a job."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_pending", "sent_at", "channel"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # in_app | email
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"))
    lease_id: Mapped[int | None] = mapped_column(ForeignKey("leases.id"))
    kind: Mapped[str] = mapped_column(String(32))  # overdue | low_balance
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str] = mapped_column(Text, default="")


class JobLock(Base):
    """One row per scheduled job: who holds it until when, and the last run it completed."""

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100), default="")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_key: Mapped[str] = mapped_column(String(64), default="")  # e.g. "2026-04-01"
    last_finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JobRun(Base):
    """One run of a scheduled job: by the scheduler over every property (`property_id` NULL)
    or triggered by a person for one property. The latest runs of each job are kept."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_name", "name", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | manual
    property_id: Mapped[int | None] = mapped_column(ForeignKey("properties.id"))
    started_by: Mapped[str] = mapped_column(String(100))  # the scheduler's holder, or a user
    key: Mapped[str] = mapped_column(String(64), default="")  # the day or slot it ran for
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # running | ok | failed | abandoned (its process ended, or its lease ran out, unfinished)
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(100), default="", server_default="")  # host:pid:start
    holder: Mapped[str] = mapped_column(String(100), default="", server_default="")  # of the lock
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
