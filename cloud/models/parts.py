"""Spare parts: the organisation's catalogue, the stock of each property's store, and every
movement in or out (an issue or a return names its work order).

Stock never goes below zero: a CHECK holds it, and an issue is one conditional UPDATE
(`quantity >= n`), so two people taking the last unit at once cannot both get it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.models.base import Base
from cloud.models.billing import BigId


class SparePart(Base):
    """A part the organisation keeps, with the price a tenant is charged for one."""

    __tablename__ = "spare_parts"
    __table_args__ = (
        UniqueConstraint("org_id", "code", name="uq_spare_parts_code"),
        CheckConstraint("price_fen >= 0", name="ck_spare_parts_price"),
        CheckConstraint("reorder_level >= 0", name="ck_spare_parts_reorder"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(16), default="pcs")
    price_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # a store holding fewer than this raises a `part_low_stock` alarm
    reorder_level: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PartStock(Base):
    """How many of a part one property's store holds."""

    __tablename__ = "part_stock"
    __table_args__ = (CheckConstraint("quantity >= 0", name="ck_part_stock_not_negative"),)

    part_id: Mapped[int] = mapped_column(ForeignKey("spare_parts.id"), primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer, default=0)


class PartMovement(Base):
    """One movement: `quantity` > 0 into the store (a receipt, a return), < 0 out of it (an
    issue to a work order). `price_fen` is the unit price at the time."""

    __tablename__ = "part_movements"
    __table_args__ = (
        Index("ix_part_movements_order", "order_id"),
        Index("ix_part_movements_store", "property_id", "part_id", "id"),
        CheckConstraint("quantity != 0", name="ck_part_movements_quantity"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    part_id: Mapped[int] = mapped_column(ForeignKey("spare_parts.id"))
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))
    kind: Mapped[str] = mapped_column(String(16))  # receipt | issue | return
    quantity: Mapped[int] = mapped_column(Integer)
    price_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    by_user: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
