"""Work orders: tenants report faults in their own unit and confirm, reopen or rate the repair;
the desk and managers assign; maintenance staff report progress on their own orders."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from cloud.api.deps import (
    NowDep,
    SessionDep,
    guard,
    not_found,
    require_property,
    scoped_get,
    tenant_lease_filter,
)
from cloud.api.paging import BodyId, CursorQ, IdQ, PathId, fetch_newest
from cloud.api.problems import ProblemError
from cloud.api.scope import PropertyQ, scope_filter
from cloud.maintenance import orders, photos
from cloud.maintenance.sla import load_calendar
from cloud.models import (
    Asset,
    Category,
    Lease,
    LeaseStatus,
    OrderSource,
    OrderState,
    Priority,
    Property,
    Role,
    Unit,
    User,
    UserProperty,
    WorkOrder,
    WorkOrderPhoto,
)
from cloud.security.authz import ROLE_PERMISSIONS, Permission, Principal

router = APIRouter(tags=["work orders"])
P = Permission
Text = Annotated[str, Field(max_length=2000)]


class OrderIn(BaseModel):
    unit_id: BodyId | None = None
    property_id: BodyId | None = Field(None, description="With `area`, for a common area.")
    area: str = Field("", max_length=100)
    category: Category
    priority: Priority = Priority.NORMAL
    description: str = Field(min_length=1, max_length=2000)
    asset_id: BodyId | None = None


class OrderOut(BaseModel):
    id: int
    property_id: int
    unit_id: int | None
    area: str
    category: Category
    priority: Priority
    description: str
    state: OrderState
    source: OrderSource
    tenant_id: int | None
    assignee_id: int | None
    alarm_id: int | None
    asset_id: int | None
    under_warranty: bool
    created_at: datetime
    updated_at: datetime
    response_due: datetime | None
    resolution_due: datetime | None
    responded_at: datetime | None
    resolved_at: datetime | None
    overdue: bool
    rating: int | None
    rating_comment: str
    photo_ids: list[int] = Field(default_factory=list)

    @classmethod
    def of(cls, o: WorkOrder, photo_ids: list[int] | None = None) -> OrderOut:
        fields = {k: getattr(o, k) for k in cls.model_fields if k != "photo_ids"}
        return cls(**fields, photo_ids=photo_ids or [])


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_after: str | None


class AssignIn(BaseModel):
    assignee_id: BodyId
    note: Text = ""


class ProgressIn(BaseModel):
    state: Literal[OrderState.IN_PROGRESS, OrderState.WAITING_PARTS, OrderState.DONE]
    note: Text = ""


class ConfirmIn(BaseModel):
    action: Literal["confirm", "reopen"]
    note: Text = ""


class RatingIn(BaseModel):
    rating: int = Field(ge=1, le=5)
    comment: str = Field("", max_length=1000)


class PhotoIn(BaseModel):
    data: str = Field(max_length=(photos.MAX_BYTES * 4) // 3 + 4, description="base64")


class FigureOut(BaseModel):
    property_id: int
    by: Literal["worker", "category"]
    key: str  # the worker's user id, or the category
    orders: int
    done: int
    overdue: int
    rated: int
    rating_avg: float | None


class FigurePage(BaseModel):
    items: list[FigureOut]


# ---- reading ------------------------------------------------------------------------------


@router.get("/work-orders")
def list_orders(
    me: Annotated[Principal, guard(P.WORK_ORDERS_READ, "list")],
    session: SessionDep,
    property_id: PropertyQ = None,
    state: OrderState | None = None,
    assignee_id: IdQ = None,
    overdue: bool | None = None,
    after: CursorQ = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OrderPage:
    """Newest first by (created_at, id); page with `after=<next_after>`. A tenant sees the
    orders they reported."""
    if me.is_tenant:
        where = WorkOrder.tenant_id == (me.tenant_id or 0)
    else:
        where = scope_filter(me, WorkOrder.property_id, property_id)
    query = select(WorkOrder).where(where)
    if state is not None:
        query = query.where(WorkOrder.state == state)
    if assignee_id is not None:
        query = query.where(WorkOrder.assignee_id == assignee_id)
    if overdue is not None:
        query = query.where(WorkOrder.overdue.is_(overdue))
    rows, nxt = fetch_newest(session, query, WorkOrder.created_at, WorkOrder.id, after, limit=limit)
    return OrderPage(items=[OrderOut.of(o) for o in rows], next_after=nxt)


@router.get("/work-orders/{order_id}")
def get_order(
    order_id: PathId,
    me: Annotated[Principal, guard(P.WORK_ORDERS_READ, "path")],
    session: SessionDep,
) -> OrderOut:
    return out(session, scoped_get(session, me, WorkOrder, order_id))


def out(session: Session, order: WorkOrder) -> OrderOut:
    ids = session.scalars(
        select(WorkOrderPhoto.id).where(WorkOrderPhoto.order_id == order.id).order_by("id")
    )
    return OrderOut.of(order, list(ids))


# ---- opening ------------------------------------------------------------------------------


@router.post("/work-orders", status_code=201)
def open_order(
    body: OrderIn,
    me: Annotated[Principal, guard(P.WORK_ORDERS_CREATE, "body")],
    session: SessionDep,
    now: NowDep,
) -> OrderOut:
    """A unit's order (`unit_id`), or a common area's (`property_id` and `area`). A tenant
    reports for a unit they lease (signed or active), nothing else."""
    unit = session.get(Unit, body.unit_id) if body.unit_id is not None else None
    if body.unit_id is not None:
        if unit is None or not may_report_for(session, me, unit):
            raise not_found("unit", body.unit_id)
        property_id = unit.property_id
    elif body.property_id is not None and body.area.strip() and not me.is_tenant:
        require_property(me, body.property_id)
        property_id = body.property_id
    else:
        raise ProblemError(422, "name a unit_id, or a property_id and an area")
    if body.asset_id is not None:
        asset = session.get(Asset, body.asset_id)
        if (
            asset is None
            or asset.property_id != property_id
            or (unit is not None and asset.unit_id not in (None, unit.id))
        ):
            raise not_found("asset", body.asset_id)
    spec = orders.NewOrder(
        property_id=property_id, category=body.category, priority=body.priority,
        description=body.description, unit_id=body.unit_id, area=body.area.strip(),
        asset_id=body.asset_id,
    )  # fmt: skip
    org_id = session.get_one(Property, property_id).org_id
    order = orders.open_order(
        session, org_id, spec,
        source=OrderSource.TENANT if me.is_tenant else OrderSource.STAFF,
        cal=load_calendar(session), now=now, who=me,
        tenant_id=me.tenant_id if me.is_tenant else None,
    )  # fmt: skip
    session.commit()
    return out(session, order)


def may_report_for(session: Session, me: Principal, unit: Unit) -> bool:
    if not me.is_tenant:
        return me.sees_property(unit.property_id)
    lease = session.scalar(
        select(Lease.id).where(
            Lease.unit_id == unit.id,
            Lease.status.in_((LeaseStatus.SIGNED, LeaseStatus.ACTIVE)),
            tenant_lease_filter(me.tenant_id or 0),
        )
    )
    return lease is not None


# ---- steps --------------------------------------------------------------------------------


def move(
    session: Session, order: WorkOrder, to: OrderState, *, now: datetime, who: Principal,
    assignee_id: int | None = None, note: str = "",
) -> OrderOut:  # fmt: skip
    try:
        orders.step(session, order, to, now=now, who=who, assignee_id=assignee_id, note=note)
    except orders.IllegalStepError as exc:
        raise ProblemError(409, str(exc), allowed=[str(s) for s in exc.allowed]) from None
    session.commit()
    return out(session, order)


@router.post("/work-orders/{order_id}/assignment")
def assign(
    order_id: PathId,
    body: AssignIn,
    me: Annotated[Principal, guard(P.WORK_ORDERS_ASSIGN, "path")],
    session: SessionDep,
    now: NowDep,
) -> OrderOut:
    """To a worker of the order's property: a user whose role reports progress."""
    order = scoped_get(session, me, WorkOrder, order_id)
    if not is_worker_of(session, body.assignee_id, order):
        raise ProblemError(422, f"user {body.assignee_id} cannot work on this property's orders")
    return move(session, order, OrderState.ASSIGNED, now=now, who=me,
                assignee_id=body.assignee_id, note=body.note)  # fmt: skip


def is_worker_of(session: Session, user_id: int, order: WorkOrder) -> bool:
    return user_id in workers_of(session, order.org_id, order.property_id, only=user_id)


def workers_of(
    session: Session, org_id: int, property_id: int, *, only: int | None = None
) -> dict[int, str]:
    """Who may be assigned the property's orders, by id (username): active users of the
    organisation whose role reports progress, admins or scoped to the property."""
    roles = [r for r, perms in ROLE_PERMISSIONS.items() if P.WORK_ORDERS_WORK in perms]
    scoped = select(UserProperty.user_id).where(UserProperty.property_id == property_id)
    query = select(User.id, User.username).where(
        User.org_id == org_id,
        User.active.is_(True),
        User.role.in_(roles),
        or_(User.role == Role.ADMIN, User.id.in_(scoped)),
    )
    if only is not None:
        query = query.where(User.id == only)
    return dict(session.execute(query.order_by(User.username)).all())


@router.post("/work-orders/{order_id}/progress")
def progress(
    order_id: PathId,
    body: ProgressIn,
    me: Annotated[Principal, guard(P.WORK_ORDERS_WORK, "path")],
    session: SessionDep,
    now: NowDep,
) -> OrderOut:
    """in_progress, waiting_parts, done. Maintenance staff report on orders assigned to them."""
    order = scoped_get(session, me, WorkOrder, order_id)
    if me.role is Role.MAINTENANCE and order.assignee_id != me.user_id:
        raise ProblemError(403, "this order is assigned to someone else")
    return move(session, order, body.state, now=now, who=me, note=body.note)


@router.post("/work-orders/{order_id}/confirmation")
def confirm(
    order_id: PathId,
    body: ConfirmIn,
    me: Annotated[Principal, guard(P.WORK_ORDERS_CONFIRM, "path")],
    session: SessionDep,
    now: NowDep,
) -> OrderOut:
    """The reporter (or a manager) confirms the repair, or reopens it."""
    order = scoped_get(session, me, WorkOrder, order_id)
    to = OrderState.CONFIRMED if body.action == "confirm" else OrderState.REOPENED
    return move(session, order, to, now=now, who=me, note=body.note)


@router.post("/work-orders/{order_id}/rating")
def rate(
    order_id: PathId,
    body: RatingIn,
    me: Annotated[Principal, guard(P.WORK_ORDERS_CONFIRM, "path")],
    session: SessionDep,
    now: NowDep,
) -> OrderOut:
    order = scoped_get(session, me, WorkOrder, order_id)
    try:
        orders.rate(session, order, body.rating, body.comment, now=now, who=me)
    except orders.IllegalStepError:
        raise ProblemError(409, "rate an order once it is done") from None
    session.commit()
    return out(session, order)


# ---- photos -------------------------------------------------------------------------------


@router.post("/work-orders/{order_id}/photos", status_code=201)
def add_photo(
    order_id: PathId,
    body: PhotoIn,
    me: Annotated[Principal, guard(P.WORK_ORDERS_CREATE, "path")],
    session: SessionDep,
    now: NowDep,
) -> OrderOut:
    """A JPEG, PNG or WebP up to 2 MiB (told by its bytes), at most 6 per order."""
    order = scoped_get(session, me, WorkOrder, order_id)
    try:
        data = base64.b64decode(body.data, validate=True)
        content_type = photos.sniff(data)
    except (binascii.Error, ValueError) as exc:
        raise ProblemError(422, f"photo refused: {exc}") from None
    count = session.scalar(
        select(func.count()).select_from(WorkOrderPhoto).where(WorkOrderPhoto.order_id == order.id)
    )
    if (count or 0) >= photos.MAX_PER_ORDER:
        raise ProblemError(409, f"an order holds at most {photos.MAX_PER_ORDER} photos")
    session.add(
        WorkOrderPhoto(
            order_id=order.id, content_type=content_type, size=len(data),
            sha256=hashlib.sha256(data).hexdigest(), data=data, uploaded_by=me.user_id,
            created_at=now,
        )
    )  # fmt: skip
    orders.record(session, me, "work_order.photo", now, order, detail={"size": len(data)})
    session.commit()
    return out(session, order)


@router.get("/work-orders/{order_id}/photos/{photo_id}", response_class=Response)
def get_photo(
    order_id: PathId,
    photo_id: PathId,
    me: Annotated[Principal, guard(P.WORK_ORDERS_READ, "path")],
    session: SessionDep,
) -> Response:
    order = scoped_get(session, me, WorkOrder, order_id)
    photo = session.get(WorkOrderPhoto, photo_id)
    if photo is None or photo.order_id != order.id:
        raise not_found("photo", photo_id)
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}
    return Response(photo.data, media_type=photo.content_type, headers=headers)


# ---- figures ------------------------------------------------------------------------------


@router.get("/work-order-figures")
def figures(
    me: Annotated[Principal, guard(P.REPORTS_READ, "list")],
    session: SessionDep,
    property_id: PropertyQ = None,
) -> FigurePage:
    """Per property, per worker and per category: orders, done, overdue, average rating."""
    done = WorkOrder.state.in_((OrderState.DONE, OrderState.CONFIRMED))
    items: list[FigureOut] = []
    for by, column in (("worker", WorkOrder.assignee_id), ("category", WorkOrder.category)):
        rows = session.execute(
            select(
                WorkOrder.property_id, column, func.count(),
                func.sum(case((done, 1), else_=0)),
                func.sum(case((WorkOrder.overdue, 1), else_=0)),
                func.count(WorkOrder.rating), func.avg(WorkOrder.rating),
            )
            .where(scope_filter(me, WorkOrder.property_id, property_id), column.is_not(None))
            .group_by(WorkOrder.property_id, column)
            .order_by(WorkOrder.property_id, column)
        )  # fmt: skip
        for prop, key, n, n_done, n_over, n_rated, avg in rows:
            items.append(
                FigureOut(
                    property_id=prop, by=by, key=str(key), orders=n, done=int(n_done or 0),
                    overdue=int(n_over or 0), rated=n_rated,
                    rating_avg=round(float(avg), 2) if avg is not None else None,
                )
            )  # fmt: skip
    return FigurePage(items=items)
