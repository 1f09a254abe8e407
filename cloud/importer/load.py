"""Stream an operator's CSV into the database: read, check and insert a chunk at a time, inside
the caller's one transaction, so a file of any size takes bounded memory and still goes in whole
or not at all.

Every bad row is reported (line, column, reason; never the value) as it is found. The caller
commits only when no row was bad, or when bad rows may be skipped; a dry run does everything an
import does and rolls back, so it also finds the clashes between rows of the file.
Re-importing creates nothing new: units are keyed by building + code, tenants and leases by the
old system's id (`external_ref`) within the importing organisation, never another's.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select, text, tuple_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cloud.db.bulk import insert_rows
from cloud.importer.csvfile import CsvError, Lines, Row, read_rows, yuan_to_fen
from cloud.leases import service
from cloud.models import (
    Base,
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
from cloud.security import pii
from cloud.security.crypto import FieldKeys

CHUNK = 2000  # rows checked, looked up and inserted together
TABLES = Base.metadata.tables
T = TypeVar("T")


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


def _width(table: str, column: str) -> int:
    length = getattr(TABLES[table].c[column].type, "length", None)
    assert isinstance(length, int)
    return length


# The widest value each text column takes (PostgreSQL refuses longer ones mid-transaction).
LIMITS: dict[str, int] = {
    "property": _width("properties", "name"),
    "building": _width("buildings", "name"),
    "code": _width("units", "code"),
    "unit": _width("units", "code"),
    "layout": _width("units", "layout"),
    "name": _width("tenants", "name"),
    "id_type": _width("tenants", "id_doc_type"),
    "external_ref": _width("tenants", "external_ref"),
    "tenant_ref": _width("tenants", "external_ref"),
}


@dataclass(frozen=True)
class RowError:
    line: int
    column: str  # "" when the row as a whole is wrong
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}, {self.column}" if self.column else f"line {self.line}"
        return f"{where}: {self.reason}"


@dataclass
class Report:
    kind: Kind
    rows: int = 0
    created: int = 0
    unchanged: int = 0
    bad: int = 0


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
    report: Report
    on_error: Callable[[RowError], None]
    props: dict[str, Property] = field(default_factory=dict)
    buildings: dict[tuple[int, str], Building] = field(default_factory=dict)
    # Per table, the lowest id this import can have given: a key found at or above it was
    # written by an earlier row of the same file (no per-row memory is kept).
    first_new: dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        for model in (Unit, Tenant, Lease):
            top = self.session.scalar(select(func.max(model.id)))
            self.first_new[model.__tablename__] = (top or 0) + 1

    def bad(self, line: int, column: str, reason: str) -> None:
        self.report.bad += 1
        self.on_error(RowError(line, column, reason))

    def found(
        self, line: int, column: str, model: type[Unit | Tenant | Lease], row_id: int
    ) -> None:
        """A row whose key is stored already: unchanged, or a repeat within the file."""
        if row_id >= self.first_new[model.__tablename__]:
            self.bad(line, column, "repeats an earlier row of the file")
        else:
            self.report.unchanged += 1

    def own(self, model: type[Tenant | Lease], ref: str) -> tuple[ColumnElement[bool], ...]:
        """The filter for a row of this organisation with the old system's id `ref`."""
        return (model.org_id == self.org.id, model.external_ref == ref)

    def prop(self, name: str, *, create: bool) -> Property:
        if name not in self.props:
            found = self.session.scalar(
                select(Property).where(Property.org_id == self.org.id, Property.name == name)
            )
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
            found = self.session.scalar(
                select(Building).where(Building.property_id == prop.id, Building.name == name)
            )
            if found is None:
                if not create:
                    raise BadRow("building", f"no building {name!r} in {prop.name!r}")
                found = Building(property_id=prop.id, name=name)
                self.session.add(found)
                self.session.flush()
            self.buildings[key] = found
        return self.buildings[key]


def stored(
    session: Session, model: type[Unit | Tenant], columns: tuple[str, str], keys: list[Any]
) -> list[tuple[Any, int]]:
    """(key, id) of the rows whose two key columns (an integer, a text) hold one of `keys`. On
    PostgreSQL one join with two array parameters, planned as index lookups: a list of
    thousands of placeholders costs more in the driver than the lookup, and a query per group
    of keys costs a round trip each."""
    first, second = columns
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            text(
                f"SELECT t.{first}, t.{second}, t.id FROM {model.__tablename__} t "  # noqa: S608 - our names
                "JOIN unnest(CAST(:a AS integer[]), CAST(:b AS varchar[])) AS k(a, b) "
                f"ON t.{first} = k.a AND t.{second} = k.b"
            ),
            {"a": [k[0] for k in keys], "b": [k[1] for k in keys]},
        )
    else:
        a, b = getattr(model, first), getattr(model, second)
        rows = session.execute(select(a, b, model.id).where(tuple_(a, b).in_(keys)))
    return [((x, y), row_id) for x, y, row_id in rows]


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


def _cycle(text: str) -> int:
    n = int(text)
    if n not in (1, 2, 3, 6, 12):
        raise ValueError("must be 1, 2, 3, 6 or 12")
    return n


# ---- units: checked per row, then looked up and inserted per chunk --------------------------


def check_unit(row: Row) -> dict[str, Any]:
    return {
        "code": need(row, "code"),
        "floor": parse(row, "floor", _int(-5, 300)),
        "area_m2": parse(row, "area_m2", _area),
        "base_rent_fen": parse(row, "base_rent", yuan_to_fen),
        "status": parse(row, "status", UnitStatus, UnitStatus.VACANT),
        "layout": row.values.get("layout", ""),
        "property_id": need(row, "property"),  # names until write_units resolves them
        "building_id": need(row, "building"),
    }


def write_units(ctx: Context, checked: list[tuple[int, dict[str, Any]]]) -> None:
    fresh: dict[tuple[int, str], tuple[int, dict[str, Any]]] = {}
    for line, unit in checked:
        prop = ctx.prop(unit["property_id"], create=True)
        bld = ctx.building(prop, unit["building_id"], create=True)
        unit["property_id"], unit["building_id"] = prop.id, bld.id
        key = (bld.id, unit["code"])
        if key in fresh:
            ctx.bad(line, "code", f"repeats line {fresh[key][0]}")
            continue
        fresh[key] = (line, unit)
    if not fresh:
        return
    for key, unit_id in stored(ctx.session, Unit, ("building_id", "code"), list(fresh)):
        line, _ = fresh.pop(key)
        ctx.found(line, "code", Unit, unit_id)
    insert_rows(ctx.session, TABLES["units"], [unit for _, unit in fresh.values()])
    ctx.report.created += len(fresh)


# ---- tenants: encrypted and inserted per chunk ------------------------------------------------


def check_tenant(row: Row) -> dict[str, Any]:
    doc_type = row.values.get("id_type") or "cn_id"
    values: dict[str, Any] = {
        "external_ref": need(row, "external_ref"),
        "name": need(row, "name"),
        "id_doc_type": doc_type,
        "property_id": need(row, "property"),  # a name until write_tenants resolves it
    }
    for column in ("id_number", "phone", "bank_card"):
        raw = row.values.get(column, "")
        try:
            values[column] = pii.normalize(column, raw, doc_type=doc_type) if raw else None
        except pii.InvalidPiiError as exc:
            raise BadRow(column, exc.reason) from None
    if values["id_number"] is None:
        raise BadRow("id_number", "is required")
    return values


def write_tenants(ctx: Context, checked: list[tuple[int, dict[str, Any]]]) -> None:
    fresh: dict[str, tuple[int, dict[str, Any]]] = {}
    for line, tenant in checked:
        try:
            tenant["property_id"] = ctx.prop(tenant["property_id"], create=False).id
        except BadRow as bad:
            ctx.bad(line, bad.column, bad.reason)
            continue
        ref = tenant["external_ref"]
        if ref in fresh:
            ctx.bad(line, "external_ref", f"repeats line {fresh[ref][0]}")
            continue
        fresh[ref] = (line, tenant)
    if not fresh:
        return
    keys = [(ctx.org.id, ref) for ref in fresh]
    for (_, ref), tenant_id in stored(ctx.session, Tenant, ("org_id", "external_ref"), keys):
        line, _ = fresh.pop(ref)
        ctx.found(line, "external_ref", Tenant, tenant_id)
    rows: list[dict[str, Any]] = []
    for _, tenant in fresh.values():
        row: dict[str, Any] = {"org_id": ctx.org.id, "created_at": ctx.now}
        for pii_field in pii.PII_FIELDS:
            plain = tenant.pop(pii_field, None)
            sealed = pii.sealed(ctx.keys, pii_field, plain) if plain else (None, None)
            row[f"{pii_field}_enc"], row[f"{pii_field}_bidx"] = sealed
        rows.append(row | tenant)
    insert_rows(ctx.session, TABLES["tenants"], rows)
    ctx.report.created += len(rows)


# ---- leases: row by row (each may need the rows before it: units let, tenants named) ----------


def check_lease(row: Row) -> dict[str, Any]:
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
    co = [r.strip() for r in row.values.get("co_tenant_refs", "").split(";") if r.strip()]
    return {
        "ref": need(row, "external_ref"),
        "terms": terms,
        "status": parse(row, "status", LeaseStatus, LeaseStatus.ACTIVE),
        "property": need(row, "property"),
        "building": need(row, "building"),
        "unit": need(row, "unit"),
        "tenant_ref": need(row, "tenant_ref"),
        "co_tenant_refs": co,
    }


def write_leases(ctx: Context, checked: list[tuple[int, dict[str, Any]]]) -> None:
    for line, lease in checked:
        try:
            lease_row(ctx, line, lease)
        except BadRow as bad:
            ctx.bad(line, bad.column, bad.reason)
    ctx.session.flush()
    ctx.session.expunge_all()  # the leases and units of this chunk; the caches stay usable


def lease_row(ctx: Context, line: int, new: dict[str, Any]) -> None:
    prop = ctx.prop(new["property"], create=False)
    bld = ctx.building(prop, new["building"], create=False)
    unit = session_unit(ctx.session, bld.id, new["unit"])
    if unit is None:
        raise BadRow("unit", f"no unit {new['unit']!r} in {bld.name!r}; import units first")
    tenant_id = _tenant_ref(ctx, new["tenant_ref"], "tenant_ref")
    co = [_tenant_ref(ctx, r, "co_tenant_refs") for r in new["co_tenant_refs"]]
    if (
        stored := ctx.session.scalar(select(Lease.id).where(*ctx.own(Lease, new["ref"])))
    ) is not None:
        ctx.found(line, "external_ref", Lease, stored)
        return
    terms, status = new["terms"], new["status"]
    probe = Lease(id=-1, unit_id=unit.id, start_date=terms.start_date, end_date=terms.end_date)
    if status in service.HOLDING and (other := service.overlapping(ctx.session, probe)):
        raise BadRow("unit", f"already let by lease {other.external_ref or other.id} then")
    lease = service.create_lease(ctx.session, unit, tenant_id, terms, ctx.now,
                                 co_tenant_ids=tuple(co), external_ref=new["ref"])  # fmt: skip
    lease.status = status  # history from the old system, taken as it was
    if status is LeaseStatus.ACTIVE:
        unit.status = UnitStatus.OCCUPIED
    elif status is LeaseStatus.SIGNED and unit.status is UnitStatus.VACANT:
        unit.status = UnitStatus.RESERVED
    ctx.session.flush()
    ctx.report.created += 1


def session_unit(session: Session, building_id: int, code: str) -> Unit | None:
    return session.scalar(select(Unit).where(Unit.building_id == building_id, Unit.code == code))


def _tenant_ref(ctx: Context, ref: str, column: str) -> int:
    tid = ctx.session.scalar(select(Tenant.id).where(*ctx.own(Tenant, ref)))
    if tid is None:
        raise BadRow(column, f"no tenant with external_ref {ref!r}; import tenants first")
    return tid


Check = Callable[[Row], dict[str, Any]]
Write = Callable[[Context, list[tuple[int, dict[str, Any]]]], None]
HANDLERS: dict[Kind, tuple[Check, Write]] = {
    Kind.UNITS: (check_unit, write_units),
    Kind.TENANTS: (check_tenant, write_tenants),
    Kind.LEASES: (check_lease, write_leases),
}


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def import_csv(
    session: Session,
    keys: FieldKeys,
    org: Organisation,
    kind: Kind,
    lines: Lines,
    *,
    now: datetime,
    on_error: Callable[[RowError], None],
    on_progress: Callable[[int], None] = lambda _bytes: None,
    on_rows: Callable[[int], None] = lambda _rows: None,
) -> Report:
    """Check and write every row of `lines` in the session's transaction; report each bad row
    to `on_error`, and after each chunk the bytes read to `on_progress` and the rows done to
    `on_rows`. The caller commits (when `report.bad` is 0, or bad rows may be skipped) or
    rolls back."""
    required, optional = COLUMNS[kind]
    check, write = HANDLERS[kind]
    report = Report(kind=kind)
    ctx = Context(session, keys, org, now, report, on_error)
    ctx.start()
    for chunk in chunks(read_rows(lines, required, optional, LIMITS), CHUNK):
        checked = []
        for row in chunk:
            report.rows += 1
            if row.problem:
                ctx.bad(row.line, row.column, row.problem)
                continue
            try:
                checked.append((row.line, check(row)))
            except BadRow as bad:
                ctx.bad(row.line, bad.column, bad.reason)
        try:
            write(ctx, checked)
        except DBAPIError as exc:  # its text quotes the rows' values: keep them out of the output
            raise CsvError(
                f"lines {chunk[0].line}-{chunk[-1].line}: the database refused them "
                f"({_primary(exc)})"
            ) from None
        on_progress(lines.bytes)
        on_rows(report.rows)
    return report


def _primary(exc: DBAPIError) -> str:
    """The database's reason without its detail (PostgreSQL's detail repeats the values)."""
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "message_primary", None) or type(exc.orig).__name__
