"""Assets: the meters, locks, gateways and appliances of a unit or a property, with vendor and
warranty end (an order on an asset under warranty says so)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from cloud.api.deps import SessionDep, flush_or_conflict, guard, not_found, require_property
from cloud.api.paging import BodyId, IdQ, Page, PageQ, page_of
from cloud.api.scope import PropertyQ, scope_filter
from cloud.models import Asset, Unit
from cloud.security.authz import Permission, Principal

router = APIRouter(tags=["assets"])
Kind = Literal["meter", "lock", "gateway", "appliance"]


class AssetIn(BaseModel):
    property_id: BodyId
    unit_id: BodyId | None = None
    kind: Kind
    name: str = Field(min_length=1, max_length=200)
    serial: str = Field("", max_length=100)
    vendor: str = Field("", max_length=200)
    warranty_end: date | None = Field(None, ge=date(2000, 1, 1), le=date(2100, 12, 31))


class AssetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    property_id: int
    unit_id: int | None
    kind: str
    name: str
    serial: str
    vendor: str
    warranty_end: date | None


@router.post("/assets", status_code=201)
def create_asset(
    body: AssetIn,
    me: Annotated[Principal, guard(Permission.PORTFOLIO_WRITE, "body")],
    session: SessionDep,
) -> AssetOut:
    require_property(me, body.property_id)
    if body.unit_id is not None:
        unit = session.get(Unit, body.unit_id)
        if unit is None or unit.property_id != body.property_id:
            raise not_found("unit", body.unit_id)
    asset = Asset(**body.model_dump())
    session.add(asset)
    flush_or_conflict(session, "asset refused")
    session.commit()
    return AssetOut.model_validate(asset)


@router.get("/assets")
def list_assets(
    me: Annotated[Principal, guard(Permission.PORTFOLIO_READ, "list")],
    session: SessionDep,
    page: PageQ,
    property_id: PropertyQ = None,
    unit_id: IdQ = None,
) -> Page[AssetOut]:
    query = select(Asset).where(scope_filter(me, Asset.property_id, property_id))
    if unit_id is not None:
        query = query.where(Asset.unit_id == unit_id)
    return page_of(session, query, Asset.id, page, AssetOut.model_validate)
