"""Maintenance: work orders and their photos, alarms raised from what the devices report, and the
business calendar the SLA clock counts in.

An alarm is keyed by (organisation, kind, key): while one is open (not resolved) no second one
with that key is raised — a partial unique index holds that on both databases, so two evaluators
racing cannot raise it twice.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
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
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.models.base import Base
from cloud.models.billing import BigId
from cloud.models.portfolio import str_enum


class OrderState(enum.StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    WAITING_PARTS = "waiting_parts"
    DONE = "done"
    CONFIRMED = "confirmed"
    REOPENED = "reopened"
    CANCELLED = "cancelled"  # an alarm's order whose condition cleared before work began


class Priority(enum.StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Category(enum.StrEnum):
    PLUMBING = "plumbing"
    ELECTRICAL = "electrical"
    APPLIANCE = "appliance"
    DOOR = "door"
    METER = "meter"
    NETWORK = "network"
    STRUCTURE = "structure"
    CLEANING = "cleaning"
    OTHER = "other"


class OrderSource(enum.StrEnum):
    TENANT = "tenant"
    STAFF = "staff"
    ALARM = "alarm"


class AlarmState(enum.StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class WorkOrder(Base):
    """A repair job in a unit or a common area (`unit_id` None, `area` names the place)."""

    __tablename__ = "work_orders"
    __table_args__ = (
        Index("ix_work_orders_property_created", "property_id", "created_at", "id"),
        Index("ix_work_orders_assignee_state", "assignee_id", "state"),
        Index("ix_work_orders_open_due", "state", "resolution_due"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="ck_work_orders_rating"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    area: Mapped[str] = mapped_column(String(100), default="")  # common area, e.g. "B1 pump room"
    category: Mapped[Category] = mapped_column(str_enum(Category, "work_order_category"))
    priority: Mapped[Priority] = mapped_column(str_enum(Priority, "work_order_priority"))
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[OrderState] = mapped_column(
        str_enum(OrderState, "work_order_state"), default=OrderState.NEW
    )
    source: Mapped[OrderSource] = mapped_column(str_enum(OrderSource, "work_order_source"))
    reported_by: Mapped[int | None] = mapped_column(Integer)  # user id (None: an alarm)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    alarm_id: Mapped[int | None] = mapped_column(BigId, index=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"))
    under_warranty: Mapped[bool] = mapped_column(Boolean, default=False)  # the asset's, on opening
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # SLA: due times in the business calendar; responded = first assignment
    response_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str] = mapped_column(String(1000), default="")
    # What the tenant is charged (parts + labour, fen), on the next bill of `charge_lease_id`
    labour_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    charge_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    charge_lease_id: Mapped[int | None] = mapped_column(ForeignKey("leases.id"))


class WorkOrderPhoto(Base):
    """A photo of the fault, bounded in size and checked to be an image by its bytes."""

    __tablename__ = "work_order_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Alarm(Base):
    __tablename__ = "alarms"
    __table_args__ = (
        Index(
            "uq_alarms_open_key",
            "org_id",
            "kind",
            "key",
            unique=True,
            sqlite_where=text("state != 'resolved'"),
            postgresql_where=text("state != 'resolved'"),
        ),
        Index("ix_alarms_property_raised", "property_id", "raised_at", "id"),
        Index("ix_alarms_kind_state", "kind", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    property_id: Mapped[int | None] = mapped_column(ForeignKey("properties.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    kind: Mapped[str] = mapped_column(String(32))  # e.g. "meter_silent", "gateway_offline"
    key: Mapped[str] = mapped_column(String(128))  # what it is about: a meter code, gateway id
    subject: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    state: Mapped[AlarmState] = mapped_column(
        str_enum(AlarmState, "alarm_state"), default=AlarmState.ACTIVE
    )
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[int | None] = mapped_column(Integer)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[int | None] = mapped_column(Integer)  # None with resolved_at: cleared
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))


class CalendarYear(Base):
    """One year's public holidays and make-up working days (调休), as ISO dates."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holidays: Mapped[list[str]] = mapped_column(JSON, default=list)
    workdays: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Asset(Base):
    """A device or appliance in a unit (or a building's common area), with its warranty."""

    __tablename__ = "assets"
    __table_args__ = (Index("ix_assets_unit", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    kind: Mapped[str] = mapped_column(String(16))  # meter | lock | gateway | appliance
    name: Mapped[str] = mapped_column(String(200))
    serial: Mapped[str] = mapped_column(String(100), default="")
    vendor: Mapped[str] = mapped_column(String(200), default="")
    warranty_end: Mapped[date | None] = mapped_column(Date)


class AlarmSubscription(Base):
    """Which alarm kinds reach a user, and where (e-mail, or a group robot's webhook)."""

    __tablename__ = "alarm_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # email | wecom | dingtalk
    target: Mapped[str] = mapped_column(String(500))  # an address or a webhook URL
    # DingTalk's signing secret, sealed (cloud.maintenance.notify.channels.seal_secret)
    secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    kinds: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every kind


class AlarmDelivery(Base):
    """One notification of one alarm on one subscription: retried with backoff, then dead."""

    __tablename__ = "alarm_deliveries"
    __table_args__ = (
        Index("ix_alarm_deliveries_due", "state", "next_at"),
        Index("uq_alarm_deliveries", "alarm_id", "subscription_id", "event", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alarm_id: Mapped[int] = mapped_column(BigId, ForeignKey("alarms.id"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("alarm_subscriptions.id"))
    event: Mapped[str] = mapped_column(String(16))  # raised | resolved
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
