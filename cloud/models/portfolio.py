"""Organisation → property → building → unit, and the meters bound to units or buildings."""

from __future__ import annotations

import enum
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.models.base import Base


def str_enum(cls: type[enum.Enum], name: str) -> Enum:
    """Enums stored as their values in a VARCHAR with a CHECK, the same on SQLite and PostgreSQL."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class UnitStatus(enum.StrEnum):
    VACANT = "vacant"
    RESERVED = "reserved"
    OCCUPIED = "occupied"
    MAINTENANCE = "maintenance"


class MeterKind(enum.StrEnum):
    SUBMETER = "submeter"  # bound to one unit
    MASTER = "master"  # bound to a building; common area = master - sum(submeters)


class Utility(enum.StrEnum):
    ELECTRICITY = "electricity"
    WATER = "water"
    HOT_WATER = "hot_water"
    GAS = "gas"


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class Property(Base):
    __tablename__ = "properties"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_properties_org_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100), default="")
    address: Mapped[str] = mapped_column(String(300), default="")


class Building(Base):
    __tablename__ = "buildings"
    __table_args__ = (UniqueConstraint("property_id", "name", name="uq_buildings_property_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    floors: Mapped[int] = mapped_column(Integer, default=1)


class Unit(Base):
    """A rentable unit. `property_id` repeats the building's so scoping is one indexed filter."""

    __tablename__ = "units"
    __table_args__ = (
        UniqueConstraint("building_id", "code", name="uq_units_building_code"),
        Index("ix_units_property_status", "property_id", "status"),
        Index("ix_units_code", "code", postgresql_ops={"code": "text_pattern_ops"}),
        CheckConstraint("base_rent_fen >= 0", name="ck_units_rent_nonneg"),
        CheckConstraint("area_m2 > 0", name="ck_units_area_pos"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"))
    code: Mapped[str] = mapped_column(String(32))
    floor: Mapped[int] = mapped_column(Integer)
    area_m2: Mapped[Decimal] = mapped_column(Numeric(9, 2))
    layout: Mapped[str] = mapped_column(String(32), default="")  # e.g. "1室1厅", "studio"
    base_rent_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[UnitStatus] = mapped_column(
        str_enum(UnitStatus, "unit_status"), default=UnitStatus.VACANT
    )


class Meter(Base):
    """A meter. `code` is the id its gateway sends in readings (`readings.meter_id`): unique in
    the organisation, not across organisations. Its readings are those of `code` sent by the
    gateway bound to it (`gateway_id`), and no other gateway's (cloud/meter_bindings.py)."""

    __tablename__ = "meters"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'submeter' AND unit_id IS NOT NULL) OR (kind = 'master' AND unit_id IS NULL)",
            name="ck_meters_binding",
        ),
        CheckConstraint("digits IS NULL OR digits BETWEEN 3 AND 12", name="ck_meters_digits"),
        # code first: ingest looks meters up by the codes a gateway sent
        UniqueConstraint("code", "org_id", name="uq_meters_code_org"),
        # what joins a gateway's readings to its meter: one meter per code on a gateway
        UniqueConstraint("gateway_id", "code", name="uq_meters_gateway_code"),
        Index("ix_meters_property", "property_id"),
        Index("ix_meters_unit", "unit_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", name="fk_meters_org_id"))
    code: Mapped[str] = mapped_column(String(64))
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    kind: Mapped[MeterKind] = mapped_column(str_enum(MeterKind, "meter_kind"))
    utility: Mapped[Utility] = mapped_column(str_enum(Utility, "utility"))
    profile: Mapped[str] = mapped_column(String(64))  # firmware-configs/meters/<profile>.yaml
    # The gateway that serves it, placed in its property (None: no readings count)
    gateway_id: Mapped[str | None] = mapped_column(
        ForeignKey("gateways.id", name="fk_meters_gateway_id")
    )
    # Counter width: a lower reading is a rollover only when the meter can wrap.
    digits: Mapped[int | None] = mapped_column(Integer)
