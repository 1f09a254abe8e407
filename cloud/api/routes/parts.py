"""Spare parts: the organisation's catalogue, each property's store, parts issued to and
returned from work orders, and the charge of a repair to the tenant's next bill."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, tuple_

from cloud.api.deps import (
    NowDep,
    SessionDep,
    flush_or_conflict,
    guard,
    not_found,
    require_property,
    scoped_get,
)
from cloud.api.paging import INVALID_CURSOR, MAX_ID, BodyId, PathId
from cloud.api.problems import ProblemError
from cloud.api.scope import PropertyQ, scope_filter
from cloud.billing.bounds import Fen
from cloud.maintenance import parts
from cloud.models import PartMovement, PartStock, Role, SparePart, WorkOrder
from cloud.security.authz import Permission, Principal

router = APIRouter(tags=["parts"])
P = Permission
Quantity = Annotated[int, Field(ge=1, le=parts.MAX_MOVE)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
MAX_STOCK_ROWS = 1000


class PartIn(BaseModel):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: Text
    unit: str = Field("pcs", min_length=1, max_length=16)
    price_fen: Fen = 0
    reorder_level: int = Field(0, ge=0, le=parts.MAX_MOVE)


class PartOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    unit: str
    price_fen: int
    reorder_level: int


class StockOut(BaseModel):
    part_id: int
    property_id: int
    code: str
    name: str
    unit: str
    price_fen: int
    quantity: int
    low: bool  # below the reorder level


class StockList(BaseModel):
    items: list[StockOut]
    next_after: str | None = None


def stock_out(part: SparePart, property_id: int, quantity: int) -> StockOut:
    return StockOut(part_id=part.id, property_id=property_id, code=part.code, name=part.name,
                    unit=part.unit, price_fen=part.price_fen, quantity=quantity,
                    low=quantity < part.reorder_level)  # fmt: skip


def org_part(session: SessionDep, me: Principal, part_id: int) -> SparePart:
    part = session.get(SparePart, part_id)
    if part is None or part.org_id != me.org_id:
        raise not_found("spare part", part_id)
    return part


@router.post("/parts", status_code=201)
def create_part(
    body: PartIn,
    me: Annotated[Principal, guard(P.PARTS_WRITE, "org")],
    session: SessionDep,
) -> PartOut:
    part = SparePart(org_id=me.org_id, active=True, **body.model_dump())
    session.add(part)
    flush_or_conflict(session, f"a part with code {body.code} exists")
    session.commit()
    return PartOut.model_validate(part)


@router.get("/part-stock")
def list_stock(
    me: Annotated[Principal, guard(P.PARTS_READ, "list")],
    session: SessionDep,
    property_id: PropertyQ = None,
    low: bool | None = None,
    after: Annotated[str | None, Query(max_length=60, pattern=r"^\d+:.+$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_STOCK_ROWS)] = MAX_STOCK_ROWS,
) -> StockList:
    """What each store of the caller's properties holds, by property and part code, a page's
    low stock first; `low=true` only what is below its reorder level. Page with
    `after=<next_after>`."""
    query = (
        select(SparePart, PartStock.property_id, PartStock.quantity)
        .join(PartStock, PartStock.part_id == SparePart.id)
        .where(SparePart.org_id == me.org_id,
               scope_filter(me, PartStock.property_id, property_id))
        .order_by(PartStock.property_id, SparePart.code)
        .limit(limit + 1)
    )  # fmt: skip
    if low is not None:
        below = PartStock.quantity < SparePart.reorder_level
        query = query.where(below if low else ~below)
    if after is not None:
        prop, code = after.split(":", 1)
        if int(prop) > MAX_ID:  # no property has it, and no database's integer holds them all
            raise ProblemError(422, INVALID_CURSOR)
        query = query.where(tuple_(PartStock.property_id, SparePart.code) > (int(prop), code))
    rows = session.execute(query).all()
    more = len(rows) > limit
    items = [stock_out(part, prop, qty) for part, prop, qty in rows[:limit]]
    last = items[-1] if more else None
    return StockList(
        items=sorted(items, key=lambda s: not s.low),
        next_after=f"{last.property_id}:{last.code}" if last else None,
    )


class ReceiptIn(BaseModel):
    property_id: BodyId
    quantity: Quantity


@router.post("/parts/{part_id}/receipts", status_code=201)
def receive(
    part_id: PathId,
    body: ReceiptIn,
    me: Annotated[Principal, guard(P.PARTS_WRITE, "body")],
    session: SessionDep,
    now: NowDep,
) -> StockOut:
    require_property(me, body.property_id)
    part = org_part(session, me, part_id)
    try:
        parts.receive(session, part, body.property_id, body.quantity, now=now, who=me)
    except parts.PartsError as exc:
        raise ProblemError(409, str(exc)) from None
    session.commit()
    return stock_out(part, body.property_id, parts.on_hand(session, part.id, body.property_id))


class OrderPartIn(BaseModel):
    part_id: BodyId
    quantity: Quantity
    action: Literal["issue", "return"] = "issue"


class MovementOut(BaseModel):
    id: int
    part_id: int
    code: str
    kind: str
    quantity: int  # < 0 out of the store
    price_fen: int
    at: datetime


class ChargeOut(BaseModel):
    order_id: int
    parts_fen: int
    labour_fen: int
    total_fen: int  # what the tenant is charged (0: nothing)
    lease_id: int | None
    invoiced: bool
    movements: list[MovementOut]


def charge_out(session: SessionDep, order: WorkOrder) -> ChargeOut:
    c = parts.charge_of(session, order)
    rows = session.execute(
        select(PartMovement, SparePart.code)
        .join(SparePart, SparePart.id == PartMovement.part_id)
        .where(PartMovement.order_id == order.id)
        .order_by(PartMovement.id)
    ).all()
    moves = [MovementOut(id=m.id, part_id=m.part_id, code=code, kind=m.kind, quantity=m.quantity,
                         price_fen=m.price_fen, at=m.at) for m, code in rows]  # fmt: skip
    return ChargeOut(order_id=order.id, parts_fen=c.parts_fen, labour_fen=c.labour_fen,
                     total_fen=c.total_fen, lease_id=c.lease_id, invoiced=c.invoiced,
                     movements=moves)  # fmt: skip


@router.post("/work-orders/{order_id}/parts", status_code=201)
def order_parts(
    order_id: PathId,
    body: OrderPartIn,
    me: Annotated[Principal, guard(P.WORK_ORDERS_WORK, "path")],
    session: SessionDep,
    now: NowDep,
) -> ChargeOut:
    """Issue parts from the property's store to the order, or return unused ones; maintenance
    staff on the orders assigned to them."""
    order = scoped_get(session, me, WorkOrder, order_id)
    if me.role is Role.MAINTENANCE and order.assignee_id != me.user_id:
        raise ProblemError(403, "this order is assigned to someone else")
    part = org_part(session, me, body.part_id)
    try:
        parts.to_order(session, order, part, body.quantity, returning=body.action == "return",
                       now=now, who=me)  # fmt: skip
    except parts.PartsError as exc:
        session.rollback()
        raise ProblemError(409, str(exc)) from None
    session.commit()
    return charge_out(session, order)


@router.get("/work-orders/{order_id}/charge")
def get_charge(
    order_id: PathId,
    me: Annotated[Principal, guard(P.WORK_ORDERS_READ, "path")],
    session: SessionDep,
) -> ChargeOut:
    """Parts used, labour, and what the tenant is charged (a tenant: on their own orders)."""
    return charge_out(session, scoped_get(session, me, WorkOrder, order_id))


class ChargeIn(BaseModel):
    labour_fen: Fen = 0


@router.post("/work-orders/{order_id}/charge")
def set_charge(
    order_id: PathId,
    body: ChargeIn,
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "path")],
    session: SessionDep,
    now: NowDep,
    request: Request,
) -> ChargeOut:
    """Charge the tenant parts + labour on the lease's next bill (0 labour and no parts: no
    charge). Refused once that bill is written."""
    order = scoped_get(session, me, WorkOrder, order_id)
    today = now.astimezone(request.app.state.settings.zone).date()
    try:
        parts.charge(session, order, body.labour_fen, today=today, now=now, who=me)
    except parts.PartsError as exc:
        raise ProblemError(409, str(exc)) from None
    session.commit()
    return charge_out(session, order)
