"""Leases: create, list (a tenant sees only their own), edit a draft's terms, lifecycle steps,
renewal."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.deps import (
    NowDep,
    SessionDep,
    flush_or_conflict,
    guard,
    scoped_get,
    tenant_lease_filter,
)
from cloud.api.paging import MAX_ID, BodyId, IdQ, Page, PageQ, PathId, fetch_page
from cloud.api.problems import ProblemError
from cloud.api.scope import PropertyQ, scope_filter
from cloud.billing.bounds import Day, Fen
from cloud.leases import service
from cloud.leases.lifecycle import Action, IllegalTransitionError, allowed_actions
from cloud.models import Lease, LeaseStatus, LeaseTenant, Proration, Tenant, Unit
from cloud.security import audit
from cloud.security.authz import Permission, Principal

router = APIRouter(tags=["leases"])
P = Permission
ReadList = Annotated[Principal, guard(P.LEASES_READ, "list")]
WriteBody = Annotated[Principal, guard(P.LEASES_WRITE, "body")]
ReadPath = Annotated[Principal, guard(P.LEASES_READ, "path")]
WritePath = Annotated[Principal, guard(P.LEASES_WRITE, "path")]


class LeaseIn(BaseModel):
    """A new draft lease. Its own late-fee rule, if any, is billing's to set
    (`PUT /leases/{id}/late-fee-policy`); until then the property's or organisation's applies."""

    model_config = ConfigDict(extra="forbid")

    unit_id: BodyId
    primary_tenant_id: BodyId
    co_tenant_ids: list[BodyId] = Field(default_factory=list, max_length=20)
    occupant_count: int = Field(1, ge=1, le=50)
    start_date: Day
    end_date: Day
    rent_fen: Fen
    deposit_fen: Fen
    payment_cycle_months: int = Field(1, description="1, 2, 3, 6 or 12")
    due_days_before: int = Field(7, ge=0, le=60)
    proration: Proration = Proration.CALENDAR_DAYS
    external_ref: str | None = Field(None, max_length=64)


class LeaseOut(BaseModel):
    id: int
    property_id: BodyId
    unit_id: BodyId
    primary_tenant_id: BodyId
    co_tenant_ids: list[int]
    status: LeaseStatus
    start_date: date
    end_date: date
    occupant_count: int
    rent_fen: int
    deposit_fen: int
    payment_cycle_months: int
    due_days_before: int
    proration: Proration
    late_fee_policy_id: int | None
    renewed_from_id: int | None
    signed_at: datetime | None
    activated_at: datetime | None
    closed_at: datetime | None
    terminated_on: date | None
    termination_reason: str
    allowed_actions: list[str]
    needs_supervised_account: bool


class TermsPatch(BaseModel):
    """A draft lease's terms; fields left out stay as they are. The lease's own late-fee rule is
    billing's (`/leases/{id}/late-fee-policy`)."""

    model_config = ConfigDict(extra="forbid")

    start_date: Day | None = None
    end_date: Day | None = None
    rent_fen: Fen | None = None
    deposit_fen: Fen | None = None
    payment_cycle_months: int | None = Field(None, description="1, 2, 3, 6 or 12")
    due_days_before: int | None = Field(None, ge=0, le=60)
    proration: Proration | None = None
    occupant_count: int | None = Field(None, ge=1, le=50)


class TransitionIn(BaseModel):
    action: Action
    terminated_on: Day | None = None
    reason: str = Field("", max_length=500)


class RenewalIn(BaseModel):
    months: int = Field(ge=1, le=120)
    rent_fen: Fen | None = None


def co_tenants_of(session: Session, lease_ids: list[int]) -> dict[int, list[int]]:
    """Co-tenants for a page of leases in one query."""
    out: dict[int, list[int]] = {i: [] for i in lease_ids}
    rows = session.execute(
        select(LeaseTenant.lease_id, LeaseTenant.tenant_id)
        .where(LeaseTenant.lease_id.in_(lease_ids))
        .order_by(LeaseTenant.tenant_id)
    )
    for lease_id, tenant_id in rows:
        out[lease_id].append(tenant_id)
    return out


def lease_out(session: Session, lease: Lease, co: list[int] | None = None) -> LeaseOut:
    if co is None:
        co = co_tenants_of(session, [lease.id])[lease.id]
    parties = {lease.primary_tenant_id, *co}
    return LeaseOut(
        id=lease.id,
        property_id=lease.property_id,
        unit_id=lease.unit_id,
        primary_tenant_id=lease.primary_tenant_id,
        co_tenant_ids=sorted(parties - {lease.primary_tenant_id}),
        status=lease.status,
        start_date=lease.start_date,
        end_date=lease.end_date,
        occupant_count=lease.occupant_count,
        rent_fen=lease.rent_fen,
        deposit_fen=lease.deposit_fen,
        payment_cycle_months=lease.payment_cycle_months,
        due_days_before=lease.due_days_before,
        proration=lease.proration,
        late_fee_policy_id=lease.late_fee_policy_id,
        renewed_from_id=lease.renewed_from_id,
        signed_at=lease.signed_at,
        activated_at=lease.activated_at,
        closed_at=lease.closed_at,
        terminated_on=lease.terminated_on,
        termination_reason=lease.termination_reason,
        allowed_actions=[str(a) for a in allowed_actions(lease.status)],
        needs_supervised_account=service.needs_supervised_account(lease),
    )


def plain(value: object) -> object:
    """A term's value for the audit record's JSON."""
    return value.isoformat() if isinstance(value, date) else value


def local_today(request: Request, now: datetime) -> date:
    return now.astimezone(ZoneInfo(request.app.state.settings.timezone)).date()


@router.get("/leases")
def list_leases(
    me: ReadList,
    session: SessionDep,
    page: PageQ,
    property_id: PropertyQ = None,
    status: LeaseStatus | None = None,
    unit_id: IdQ = None,
    tenant_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Primary or co-tenant.")
    ] = None,
) -> Page[LeaseOut]:
    query = select(Lease)
    if me.is_tenant:
        query = query.where(tenant_lease_filter(me.tenant_id or 0))
    else:
        query = query.where(scope_filter(me, Lease.property_id, property_id))
    if status is not None:
        query = query.where(Lease.status == status)
    if unit_id is not None:
        query = query.where(Lease.unit_id == unit_id)
    if tenant_id is not None:
        query = query.where(tenant_lease_filter(tenant_id))
    rows, nxt = fetch_page(session, query, Lease.id, page.after, page.limit)
    co = co_tenants_of(session, [x.id for x in rows])
    return Page(items=[lease_out(session, x, co[x.id]) for x in rows], next_after=nxt)


@router.post("/leases", status_code=201)
def create_lease(
    body: LeaseIn,
    me: WriteBody,
    session: SessionDep,
    now: NowDep,
) -> LeaseOut:
    unit = scoped_get(session, me, Unit, body.unit_id)
    for tid in {body.primary_tenant_id, *body.co_tenant_ids}:
        scoped_get(session, me, Tenant, tid)
    terms = service.Terms(
        **body.model_dump(exclude={"unit_id", "primary_tenant_id", "co_tenant_ids", "external_ref"})
    )
    try:
        lease = service.create_lease(
            session,
            unit,
            body.primary_tenant_id,
            terms,
            now,
            co_tenant_ids=tuple(body.co_tenant_ids),
            external_ref=body.external_ref,
        )
    except service.LeaseConflictError as exc:
        raise ProblemError(422, str(exc)) from None
    flush_or_conflict(session, f"external_ref {body.external_ref!r} exists")
    audit.about(session, me, "lease.create", now, lease)
    session.commit()
    return lease_out(session, lease)


@router.get("/leases/{lease_id}")
def get_lease(
    lease_id: PathId,
    me: ReadPath,
    session: SessionDep,
) -> LeaseOut:
    return lease_out(session, scoped_get(session, me, Lease, lease_id))


@router.patch("/leases/{lease_id}", responses={409: {}, 422: {}})
def edit_terms(
    lease_id: PathId,
    body: TermsPatch,
    me: WritePath,
    session: SessionDep,
    now: NowDep,
) -> LeaseOut:
    """Edit a draft's terms. A signed or later lease refuses (409): its terms change by renewal."""
    lease = scoped_get(session, me, Lease, lease_id)
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise ProblemError(422, "name at least one term to change")
    if nulls := sorted(k for k, v in changes.items() if v is None):
        raise ProblemError(422, f"{', '.join(nulls)} cannot be null")
    try:
        diff = service.edit_terms(session, lease, changes)
    except service.TermsLockedError as exc:
        raise ProblemError(
            409,
            str(exc),
            lease_status=str(lease.status),
            allowed_actions=[str(a) for a in allowed_actions(lease.status)],
        ) from None
    except service.LeaseConflictError as exc:
        raise ProblemError(422, str(exc)) from None
    if diff:
        detail = {k: [plain(old), plain(new)] for k, (old, new) in diff.items()}
        audit.about(session, me, "lease.edit", now, lease, detail=detail)
    session.commit()
    return lease_out(session, lease)


@router.post("/leases/{lease_id}/transitions")
def transition(
    lease_id: PathId,
    body: TransitionIn,
    request: Request,
    me: WritePath,
    session: SessionDep,
    now: NowDep,
) -> LeaseOut:
    """sign, activate, end, terminate (with terminated_on and reason); refused steps are 409."""
    lease = scoped_get(session, me, Lease, lease_id)
    before = lease.status
    if body.action is Action.RENEW:
        raise ProblemError(409, "renew with POST /leases/{id}/renewals")
    try:
        service.apply(
            session,
            lease,
            body.action,
            today=local_today(request, now),
            now=now,
            terminated_on=body.terminated_on,
            reason=body.reason,
        )
    except IllegalTransitionError as exc:
        raise ProblemError(
            409, str(exc), allowed_actions=[str(a) for a in allowed_actions(lease.status)]
        ) from None
    detail = {"from": before, "to": lease.status, "reason": body.reason}
    audit.about(session, me, f"lease.{body.action}", now, lease, detail=detail)
    session.commit()
    return lease_out(session, lease)


@router.post("/leases/{lease_id}/renewals", status_code=201)
def renew(
    lease_id: PathId,
    body: RenewalIn,
    me: WritePath,
    session: SessionDep,
    now: NowDep,
) -> LeaseOut:
    """A new draft lease for the following period, linked by renewed_from_id."""
    lease = scoped_get(session, me, Lease, lease_id)
    try:
        new = service.renew(session, lease, body.months, now, rent_fen=body.rent_fen)
    except IllegalTransitionError as exc:
        raise ProblemError(409, str(exc)) from None
    audit.about(session, me, "lease.renew", now, new, detail={"renewed_from": lease.id})
    session.commit()
    return lease_out(session, new)
