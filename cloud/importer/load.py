"""Validate every row, then import all of them, or (with skip_bad) the good ones.

Re-importing the same file creates nothing new: units are keyed by building + code, tenants and
leases by the old system's id (`external_ref`). The caller commits (or, for a dry run, not).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from cloud.importer.csvfile import Row, read_rows, yuan_to_fen
from cloud.leases import service
from cloud.models import (
    Building,
    Lease,
    LeaseStatus,
    Organisation,
    Property,
    Proration,
    Tenant,
    Unit,
    UnitStatus,
)
from cloud.people import new_tenant
from cloud.security import pii
from cloud.security.crypto import FieldKeys


class Kind(enum.StrEnum):
    UNITS = "units"
    TENANTS = "tenants"
    LEASES = "leases"


COLUMNS: dict[Kind, tuple[set[str], set[str]]] = {
    Kind.UNITS: (
        {"property", "building", "code", "floor", "area_m2", "base_rent"},
        {"layout", "status"},
    ),
    Kind.TENANTS: (
        {"external_ref", "property", "name", "id_number"},
        {"id_type", "phone", "bank_card"},
    ),
    Kind.LEASES: (
        {"external_ref", "property", "building", "unit", "tenant_ref", "start_date", "end_date",
         "rent", "deposit"},
        {"co_tenant_refs", "payment_cycle_months", "due_days_before", "proration", "status",
         "occupant_count"},
    ),
}  # fmt: skip


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    reason: str


@dataclass
class Report:
    kind: Kind
    rows: int = 0
    created: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    applied: bool = False

    @property
    def bad_lines(self) -> set[int]:
        return {e.line for e in self.errors}


class BadRow(Exception):  # noqa: N818 - control flow inside this module only
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


@dataclass
class Context:
    session: Session
    keys: FieldKeys
    org: Organisation
    now: datetime
    props: dict[str, Property] = field(default_factory=dict)
    buildings: dict[tuple[int, str], Building] = field(default_factory=dict)

    def own(self, model: type[Tenant | Lease], ref: str) -> tuple[ColumnElement[bool], ...]:
        """The filter for a row of this organisation with the old system's id `ref`."""
        return (model.org_id == self.org.id, model.external_ref == ref)

    def find_prop(self, name: str) -> Property | None:
        return self.props.get(name) or self.session.scalar(
            select(Property).where(Property.org_id == self.org.id, Property.name == name)
        )

    def find_building(self, prop: Property, name: str) -> Building | None:
        return self.buildings.get((prop.id, name)) or self.session.scalar(
            select(Building).where(Building.property_id == prop.id, Building.name == name)
        )

    def prop(self, name: str, *, create: bool) -> Property:
        if name not in self.props:
            found = self.find_prop(name)
            if found is None:
                if not create:
                    raise BadRow("property", f"no property named {name!r}")
                found = Property(org_id=self.org.id, name=name)
                self.session.add(found)
                self.session.flush()
            self.props[name] = found
        return self.props[name]

    def building(self, prop: Property, name: str, *, create: bool) -> Building:
        key = (prop.id, name)
        if key not in self.buildings:
            found = self.find_building(prop, name)
            if found is None:
                if not create:
                    raise BadRow("building", f"no building {name!r} in {prop.name!r}")
                found = Building(property_id=prop.id, name=name)
                self.session.add(found)
                self.session.flush()
            self.buildings[key] = found
        return self.buildings[key]


def need(row: Row, column: str) -> str:
    value = row.values.get(column, "")
    if not value:
        raise BadRow(column, "is required")
    return value


def parse(row: Row, column: str, fn: Callable[[str], Any], default: Any = None) -> Any:
    raw = row.values.get(column, "")
    if not raw:
        if default is None:
            raise BadRow(column, "is required")
        return default
    try:
        return fn(raw)
    except (ValueError, InvalidOperation) as exc:
        raise BadRow(column, str(exc)) from None


def _int(lo: int, hi: int) -> Callable[[str], int]:
    def conv(text: str) -> int:
        n = int(text)
        if not lo <= n <= hi:
            raise ValueError(f"{n} is outside {lo}..{hi}")
        return n

    return conv


def _area(text: str) -> Decimal:
    area = Decimal(text)
    if not area.is_finite() or area <= 0 or area >= 10_000_000:
        raise ValueError(f"{text!r} is not an area in m²")
    return area.quantize(Decimal("0.01"))


# ---- one row of each kind: returns True if created, False if it was there already ----------


def unit_row(ctx: Context, row: Row, *, write: bool) -> bool:
    code = need(row, "code")
    floor = parse(row, "floor", _int(-5, 300))
    area = parse(row, "area_m2", _area)
    rent = parse(row, "base_rent", yuan_to_fen)
    status = parse(row, "status", UnitStatus, UnitStatus.VACANT)
    pname, bname = need(row, "property"), need(row, "building")
    if not write:  # properties and buildings named for the first time are created on import
        found = ctx.find_prop(pname)
        bfound = ctx.find_building(found, bname) if found else None
        return bfound is None or session_unit(ctx.session, bfound.id, code) is None
    prop = ctx.prop(pname, create=True)
    bld = ctx.building(prop, bname, create=True)
    if session_unit(ctx.session, bld.id, code) is not None:
        return False
    ctx.session.add(Unit(property_id=prop.id, building_id=bld.id, code=code, floor=floor,
                         area_m2=area, layout=row.values.get("layout", ""), base_rent_fen=rent,
                         status=status))  # fmt: skip
    ctx.session.flush()
    return True


def session_unit(session: Session, building_id: int, code: str) -> Unit | None:
    return session.scalar(select(Unit).where(Unit.building_id == building_id, Unit.code == code))


def tenant_row(ctx: Context, row: Row, *, write: bool) -> bool:
    ref = need(row, "external_ref")
    name = need(row, "name")
    doc_type = row.values.get("id_type") or "cn_id"
    values = {}
    for column in ("id_number", "phone", "bank_card"):
        raw = row.values.get(column, "")
        try:
            values[column] = pii.normalize(column, raw, doc_type=doc_type) if raw else None
        except pii.InvalidPiiError as exc:
            raise BadRow(column, exc.reason) from None
    if values["id_number"] is None:
        raise BadRow("id_number", "is required")
    prop = ctx.prop(need(row, "property"), create=False)
    if ctx.session.scalar(select(Tenant.id).where(*ctx.own(Tenant, ref))) is not None:
        return False
    if not write:
        return True
    new_tenant(ctx.session, ctx.keys, prop, name=name, id_number=values["id_number"],
               id_doc_type=doc_type, phone=values["phone"], bank_card=values["bank_card"],
               external_ref=ref, now=ctx.now)  # fmt: skip
    ctx.session.flush()
    return True


def lease_row(ctx: Context, row: Row, *, write: bool) -> bool:
    ref = need(row, "external_ref")
    start = parse(row, "start_date", date.fromisoformat)
    end = parse(row, "end_date", date.fromisoformat)
    if end <= start:
        raise BadRow("end_date", "must be after start_date")
    terms = service.Terms(
        start_date=start, end_date=end,
        rent_fen=parse(row, "rent", yuan_to_fen), deposit_fen=parse(row, "deposit", yuan_to_fen),
        payment_cycle_months=parse(row, "payment_cycle_months", _cycle, 1),
        due_days_before=parse(row, "due_days_before", _int(0, 60), 7),
        proration=parse(row, "proration", Proration, Proration.CALENDAR_DAYS),
        occupant_count=parse(row, "occupant_count", _int(1, 50), 1),
    )  # fmt: skip
    status = parse(row, "status", LeaseStatus, LeaseStatus.ACTIVE)
    prop = ctx.prop(need(row, "property"), create=False)
    bld = ctx.building(prop, need(row, "building"), create=False)
    unit = session_unit(ctx.session, bld.id, need(row, "unit"))
    if unit is None:
        raise BadRow("unit", f"no unit {row.values['unit']!r} in {bld.name!r}; import units first")
    tenant_id = _tenant_ref(ctx, need(row, "tenant_ref"), "tenant_ref")
    co = [_tenant_ref(ctx, r.strip(), "co_tenant_refs")
          for r in row.values.get("co_tenant_refs", "").split(";") if r.strip()]  # fmt: skip
    if ctx.session.scalar(select(Lease.id).where(*ctx.own(Lease, ref))) is not None:
        return False
    probe = Lease(id=-1, unit_id=unit.id, start_date=start, end_date=end)
    if status in service.HOLDING and (other := service.overlapping(ctx.session, probe)):
        raise BadRow("unit", f"already let by lease {other.external_ref or other.id} then")
    if not write:
        return True
    lease = service.create_lease(ctx.session, unit, tenant_id, terms, ctx.now,
                                 co_tenant_ids=tuple(co), external_ref=ref)  # fmt: skip
    lease.status = status  # history from the old system, taken as it was
    if status is LeaseStatus.ACTIVE:
        unit.status = UnitStatus.OCCUPIED
    elif status is LeaseStatus.SIGNED and unit.status is UnitStatus.VACANT:
        unit.status = UnitStatus.RESERVED
    ctx.session.flush()
    return True


def _cycle(text: str) -> int:
    n = int(text)
    if n not in (1, 2, 3, 6, 12):
        raise ValueError("must be 1, 2, 3, 6 or 12")
    return n


def _tenant_ref(ctx: Context, ref: str, column: str) -> int:
    tid = ctx.session.scalar(select(Tenant.id).where(*ctx.own(Tenant, ref)))
    if tid is None:
        raise BadRow(column, f"no tenant with external_ref {ref!r}; import tenants first")
    return tid


ROW_HANDLERS = {Kind.UNITS: unit_row, Kind.TENANTS: tenant_row, Kind.LEASES: lease_row}
KEY_COLUMNS = {Kind.UNITS: ("property", "building", "code"), Kind.TENANTS: ("external_ref",),
               Kind.LEASES: ("external_ref",)}  # fmt: skip


def import_csv(
    session: Session,
    keys: FieldKeys,
    org: Organisation,
    kind: Kind,
    text: str,
    *,
    now: datetime,
    skip_bad: bool = False,
    dry_run: bool = False,
) -> Report:
    """Check every row first (nothing written); then write all rows, or with `skip_bad` the good
    ones. A dry run only checks. The caller commits when `report.applied`."""
    required, optional = COLUMNS[kind]
    rows = read_rows(text, required, optional)
    report = Report(kind=kind, rows=len(rows))
    handler = ROW_HANDLERS[kind]
    ctx = Context(session, keys, org, now)
    seen: dict[tuple[str, ...], int] = {}
    for row in rows:
        key = tuple(row.values.get(c, "") for c in KEY_COLUMNS[kind])
        if key in seen:
            report.errors.append(RowError(row.line, KEY_COLUMNS[kind][-1],
                                          f"repeats line {seen[key]}"))  # fmt: skip
            continue
        seen[key] = row.line
        try:
            handler(ctx, row, write=False)
        except BadRow as bad:
            report.errors.append(RowError(row.line, bad.column, bad.reason))
    if dry_run or (report.errors and not skip_bad):
        return report
    for row in rows:
        if row.line in report.bad_lines:
            continue
        try:
            created = handler(ctx, row, write=True)
        except BadRow as bad:  # a clash between two rows of the file (e.g. the same unit let twice)
            report.errors.append(RowError(row.line, bad.column, bad.reason))
            continue
        report.created += created
        report.unchanged += not created
    report.applied = skip_bad or not report.errors
    return report
