"""Tenants: personal numbers masked in every response; full values only via audited reveal."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from cloud.api.deps import (
    KeysDep,
    NowDep,
    SessionDep,
    flush_or_conflict,
    guard,
    require_property,
    scoped_get,
)
from cloud.api.paging import BodyId, Page, PageQ, PathId, page_of, starts_with
from cloud.api.problems import ProblemError
from cloud.api.scope import PropertyQ, scope_filter
from cloud.models import Property, Tenant
from cloud.people import new_tenant
from cloud.security import audit, pii, pii_search
from cloud.security.authz import Permission, Principal, may_see
from cloud.security.crypto import FieldKeys

router = APIRouter(tags=["tenants"])
P = Permission
ReadList = Annotated[Principal, guard(P.TENANTS_READ, "list")]
WriteBody = Annotated[Principal, guard(P.TENANTS_WRITE, "body")]
ReadPath = Annotated[Principal, guard(P.TENANTS_READ, "path")]
RevealPath = Annotated[Principal, guard(P.TENANTS_REVEAL, "path")]


class TenantIn(BaseModel):
    property_id: BodyId
    name: str = Field(min_length=1, max_length=100)
    id_doc_type: str = Field("cn_id", pattern=r"^(cn_id|passport|hk_mo_permit|tw_permit|other)$")
    id_number: str = Field(min_length=1, max_length=40)
    phone: str | None = Field(None, max_length=40)
    bank_card: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=254)
    external_ref: str | None = Field(None, max_length=64)


class TenantOut(BaseModel):
    id: int
    property_id: BodyId
    name: str
    id_doc_type: str
    id_number: str  # masked
    phone: str | None  # masked
    bank_card: str | None  # masked
    email: str | None = None  # masked
    created_at: datetime


class RevealIn(BaseModel):
    fields: list[pii.PiiField] = Field(min_length=1, max_length=4)
    reason: str = Field(min_length=3, max_length=500)


class RevealOut(BaseModel):
    id: int
    values: dict[str, str | None]


def tenant_out(tenant: Tenant, keys: FieldKeys) -> TenantOut:
    return TenantOut(
        id=tenant.id,
        property_id=tenant.property_id,
        name=tenant.name,
        id_doc_type=tenant.id_doc_type,
        id_number=pii.masked(tenant, keys, "id_number") or "",
        phone=pii.masked(tenant, keys, "phone"),
        bank_card=pii.masked(tenant, keys, "bank_card"),
        email=pii.masked(tenant, keys, "email"),
        created_at=tenant.created_at,
    )


def _index(keys: FieldKeys, field: pii.PiiField, value: str) -> str:
    try:
        return pii.index_of(keys, field, value)
    except pii.InvalidPiiError as exc:
        raise ProblemError(422, str(exc), field=exc.field) from None


EXACT = (
    "Exact match. Only for roles that may reveal the number; audited, and limited to "
    f"{pii_search.SEARCHES_PER_WINDOW} such searches per user in "
    f"{pii_search.WINDOW.total_seconds() / 3600:g} hours (429 beyond)."
)


@router.get("/tenants", responses={403: {}, 429: {}})
def list_tenants(
    me: ReadList,
    session: SessionDep,
    keys: KeysDep,
    now: NowDep,
    page: PageQ,
    property_id: PropertyQ = None,
    q: Annotated[str | None, Query(max_length=100, description="Name prefix.")] = None,
    id_number: Annotated[str | None, Query(max_length=40, description=EXACT)] = None,
    phone: Annotated[str | None, Query(max_length=40, description=EXACT)] = None,
) -> Page[TenantOut]:
    query = select(Tenant)
    if me.is_tenant:
        query = query.where(Tenant.id == me.tenant_id)
    else:
        query = query.where(scope_filter(me, Tenant.property_id, property_id))
    if q:
        query = query.where(starts_with(session, Tenant.name, q))
    exact: dict[pii.PiiField, str] = {}
    if id_number:
        exact["id_number"] = id_number
    if phone:
        exact["phone"] = phone
    if not exact:
        return page_of(session, query, Tenant.id, page, lambda t: tenant_out(t, keys))
    fields = sorted(exact)
    refused = [f for f in fields if not may_see(me.role, f)]
    if refused:
        detail = {"fields": fields}
        audit.record(session, me, pii_search.ACTION, now, property_id=property_id,
                     outcome="denied", detail=detail)  # fmt: skip
        session.commit()
        raise ProblemError(403, f"role {me.role} may not search by {', '.join(refused)}")
    bidx = {"id_number": Tenant.id_number_bidx, "phone": Tenant.phone_bidx}
    query = query.where(*(bidx[f] == _index(keys, f, v) for f, v in exact.items()))
    found = page_of(session, query, Tenant.id, page, lambda t: tenant_out(t, keys))
    matches = [t.id for t in found.items]
    if property_id is None and len(found.items) == 1:
        property_id = found.items[0].property_id
    wait = pii_search.record(
        session, me, now, fields=fields, matches=matches, property_id=property_id
    )
    session.commit()
    if wait:
        raise ProblemError(
            429,
            "too many searches by personal number; wait and retry",
            headers={"Retry-After": str(wait)},
        )
    return found


@router.post("/tenants", status_code=201)
def create_tenant(
    body: TenantIn,
    me: WriteBody,
    session: SessionDep,
    keys: KeysDep,
    now: NowDep,
) -> TenantOut:
    require_property(me, body.property_id)
    prop = session.get_one(Property, body.property_id)
    try:
        tenant = new_tenant(
            session, keys, prop, now=now, **body.model_dump(exclude={"property_id"})
        )
    except pii.InvalidPiiError as exc:
        raise ProblemError(422, str(exc), field=exc.field) from None
    flush_or_conflict(session, f"external_ref {body.external_ref!r} exists")
    audit.about(session, me, "tenant.create", now, tenant)
    session.commit()
    return tenant_out(tenant, keys)


@router.get("/tenants/{tenant_id}")
def get_tenant(
    tenant_id: PathId,
    me: ReadPath,
    session: SessionDep,
    keys: KeysDep,
) -> TenantOut:
    return tenant_out(scoped_get(session, me, Tenant, tenant_id), keys)


@router.post("/tenants/{tenant_id}/reveal")
def reveal(
    tenant_id: PathId,
    body: RevealIn,
    me: RevealPath,
    session: SessionDep,
    keys: KeysDep,
    now: NowDep,
) -> RevealOut:
    """Full personal numbers for a stated reason. Every reveal, and every refusal, is audited."""
    tenant = scoped_get(session, me, Tenant, tenant_id)
    fields = sorted(set(body.fields))
    refused = [f for f in fields if not may_see(me.role, f)]
    detail = {"fields": fields, "reason": body.reason}
    outcome = "denied" if refused else "ok"
    audit.about(session, me, "tenant.reveal", now, tenant, outcome=outcome, detail=detail)
    session.commit()
    if refused:
        raise ProblemError(403, f"role {me.role} may not reveal {', '.join(refused)}")
    return RevealOut(id=tenant.id, values={f: pii.reveal(tenant, keys, f) for f in fields})
