"""Properties, buildings, units and meters, filtered to the caller's properties."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from cloud.api.deps import (
    SessionDep,
    flush_or_conflict,
    guard,
    require_property,
    scoped_get,
    scoped_meter,
)
from cloud.api.paging import (
    BodyId,
    IdQ,
    KeyPage,
    KeyPageQ,
    Page,
    PageQ,
    PathId,
    fetch_page,
    page_of,
    starts_with,
)
from cloud.api.problems import ProblemError
from cloud.api.scope import PropertyQ, scope_filter
from cloud.billing.bounds import Fen
from cloud.meter_bindings import BindingError, bind
from cloud.models import Building, Meter, MeterKind, Property, Unit, UnitStatus, Utility
from cloud.security.authz import Permission, Principal

router = APIRouter(tags=["portfolio"])
P = Permission
ReadList = Annotated[Principal, guard(P.PORTFOLIO_READ, "list")]
ReadPath = Annotated[Principal, guard(P.PORTFOLIO_READ, "path")]
WriteBody = Annotated[Principal, guard(P.PORTFOLIO_WRITE, "body")]
WritePath = Annotated[Principal, guard(P.PORTFOLIO_WRITE, "path")]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[\w.-]+$")]


class Orm(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PropertyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    city: str = Field("", max_length=100)
    address: str = Field("", max_length=300)


class PropertyOut(Orm):
    id: int
    name: str
    city: str
    address: str


class BuildingIn(BaseModel):
    property_id: BodyId
    name: str = Field(min_length=1, max_length=100)
    floors: int = Field(1, ge=1, le=300)


class BuildingOut(Orm):
    id: int
    property_id: BodyId
    name: str
    floors: int


class UnitIn(BaseModel):
    building_id: BodyId
    code: Code
    floor: int = Field(ge=-5, le=300)
    area_m2: Decimal = Field(gt=0, lt=10_000_000, max_digits=9, decimal_places=2)
    layout: str = Field("", max_length=32)
    base_rent_fen: Fen
    status: UnitStatus = UnitStatus.VACANT


class UnitPatch(BaseModel):
    layout: str | None = Field(None, max_length=32)
    base_rent_fen: Fen | None = None
    status: UnitStatus | None = None


class UnitOut(Orm):
    id: int
    property_id: BodyId
    building_id: BodyId
    code: str
    floor: int
    area_m2: Decimal
    layout: str
    base_rent_fen: int
    status: UnitStatus


class MeterIn(BaseModel):
    id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
        description="What its gateway calls it; unique in the organisation.",
    )  # fmt: skip
    building_id: BodyId
    unit_id: BodyId | None = None
    utility: Utility
    profile: str = Field(min_length=1, max_length=64)
    gateway_id: str | None = Field(
        None, max_length=64,
        description="The gateway that serves it, one of its property's; its readings are the "
        "ones this gateway sends (none while unset).",
    )  # fmt: skip
    digits: int | None = Field(None, ge=3, le=12)


class MeterOut(Orm):
    id: str = Field(validation_alias="code")
    property_id: BodyId
    building_id: BodyId
    unit_id: int | None
    kind: MeterKind
    utility: Utility
    profile: str
    gateway_id: str | None
    digits: int | None


# ---- properties ---------------------------------------------------------------------------


@router.get("/properties")
def list_properties(me: ReadList, session: SessionDep, page: PageQ) -> Page[PropertyOut]:
    query = select(Property).where(scope_filter(me, Property.id, None))
    return page_of(session, query, Property.id, page, PropertyOut.model_validate)


@router.post("/properties", status_code=201)
def create_property(
    body: PropertyIn,
    me: Annotated[Principal, guard(P.PROPERTY_CREATE, "org")],
    session: SessionDep,
) -> PropertyOut:
    prop = Property(org_id=me.org_id, **body.model_dump())
    session.add(prop)
    flush_or_conflict(session, f"property {body.name!r} exists")
    session.commit()
    return PropertyOut.model_validate(prop)


@router.get("/properties/{property_id}")
def get_property(property_id: PathId, me: ReadPath, session: SessionDep) -> PropertyOut:
    return PropertyOut.model_validate(scoped_get(session, me, Property, property_id))


# ---- buildings ----------------------------------------------------------------------------


@router.get("/buildings")
def list_buildings(
    me: ReadList, session: SessionDep, page: PageQ, property_id: PropertyQ = None
) -> Page[BuildingOut]:
    query = select(Building).where(scope_filter(me, Building.property_id, property_id))
    return page_of(session, query, Building.id, page, BuildingOut.model_validate)


@router.post("/buildings", status_code=201)
def create_building(body: BuildingIn, me: WriteBody, session: SessionDep) -> BuildingOut:
    require_property(me, body.property_id)
    building = Building(**body.model_dump())
    session.add(building)
    flush_or_conflict(session, f"building {body.name!r} exists in this property")
    session.commit()
    return BuildingOut.model_validate(building)


# ---- units --------------------------------------------------------------------------------


@router.get("/units")
def list_units(
    me: ReadList,
    session: SessionDep,
    page: PageQ,
    property_id: PropertyQ = None,
    building_id: IdQ = None,
    status: UnitStatus | None = None,
    q: Annotated[str | None, Query(max_length=32, description="Unit code prefix.")] = None,
) -> Page[UnitOut]:
    query = select(Unit).where(scope_filter(me, Unit.property_id, property_id))
    if building_id is not None:
        query = query.where(Unit.building_id == building_id)
    if status is not None:
        query = query.where(Unit.status == status)
    if q:
        query = query.where(starts_with(session, Unit.code, q))
    return page_of(session, query, Unit.id, page, UnitOut.model_validate)


@router.post("/units", status_code=201)
def create_unit(body: UnitIn, me: WriteBody, session: SessionDep) -> UnitOut:
    building = scoped_get(session, me, Building, body.building_id)
    unit = Unit(property_id=building.property_id, **body.model_dump())
    session.add(unit)
    flush_or_conflict(session, f"unit {body.code!r} exists in this building")
    session.commit()
    return UnitOut.model_validate(unit)


@router.get("/units/{unit_id}")
def get_unit(unit_id: PathId, me: ReadPath, session: SessionDep) -> UnitOut:
    return UnitOut.model_validate(scoped_get(session, me, Unit, unit_id))


@router.patch("/units/{unit_id}")
def update_unit(unit_id: PathId, body: UnitPatch, me: WritePath, session: SessionDep) -> UnitOut:
    unit = scoped_get(session, me, Unit, unit_id)
    for key, value in body.model_dump(exclude_none=True).items():
        setattr(unit, key, value)
    session.commit()
    return UnitOut.model_validate(unit)


# ---- meters -------------------------------------------------------------------------------


@router.get("/meters")
def list_meters(
    me: Annotated[Principal, guard(P.METERS_READ, "list")],
    session: SessionDep,
    page: KeyPageQ,
    property_id: PropertyQ = None,
    unit_id: IdQ = None,
    utility: Utility | None = None,
) -> KeyPage[MeterOut]:
    query = select(Meter).where(scope_filter(me, Meter.property_id, property_id))
    if unit_id is not None:
        query = query.where(Meter.unit_id == unit_id)
    if utility is not None:
        query = query.where(Meter.utility == utility)
    rows, nxt = fetch_page(session, query, Meter.code, page.after, page.limit)
    return KeyPage(items=[MeterOut.model_validate(r) for r in rows], next_after=nxt)


@router.post("/meters", status_code=201)
def create_meter(
    body: MeterIn,
    me: Annotated[Principal, guard(P.METERS_WRITE, "body")],
    session: SessionDep,
) -> MeterOut:
    building = scoped_get(session, me, Building, body.building_id)
    if body.unit_id is not None:
        unit = scoped_get(session, me, Unit, body.unit_id)
        if unit.building_id != building.id:
            raise ProblemError(422, f"unit {unit.id} is not in building {building.id}")
    kind = MeterKind.MASTER if body.unit_id is None else MeterKind.SUBMETER
    fields = body.model_dump(exclude={"id", "gateway_id"})
    org_id = session.get_one(Property, building.property_id).org_id
    meter = Meter(org_id=org_id, code=body.id, property_id=building.property_id, kind=kind,
                  **fields)  # fmt: skip
    try:
        bind(session, meter, body.gateway_id)
    except BindingError as exc:
        raise ProblemError(422, str(exc)) from None
    session.add(meter)
    # unique in the organisation only: another organisation's meter of that id is no clash
    flush_or_conflict(session, f"meter {body.id!r} exists")
    session.commit()
    return MeterOut.model_validate(meter)


@router.get("/meters/{meter_id}")
def get_meter(
    meter_id: str,
    me: Annotated[Principal, guard(P.METERS_READ, "path")],
    session: SessionDep,
) -> MeterOut:
    return MeterOut.model_validate(scoped_meter(session, me, meter_id))
