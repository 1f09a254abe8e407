"""Reading the audit log: admins see their organisation, managers their properties."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import select

from cloud.api.deps import SessionDep, guard
from cloud.api.paging import Page, PageQ, page_of
from cloud.api.scope import PropertyQ, scope_filter
from cloud.models import AuditEvent, Role, User
from cloud.security.authz import Permission, Principal

router = APIRouter(tags=["audit"])


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ts: datetime
    user_id: int | None
    username: str
    action: str
    target_type: str
    target_id: str
    property_id: int | None
    ip: str
    outcome: str
    detail: str


@router.get("/audit")
def list_audit(
    me: Annotated[Principal, guard(Permission.AUDIT_READ, "list")],
    session: SessionDep,
    page: PageQ,
    property_id: PropertyQ = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: AwareDatetime | None = None,
) -> Page[AuditOut]:
    """Events about the caller's properties; an admin also sees the organisation's users'
    property-less events (logins, role changes)."""
    where = scope_filter(me, AuditEvent.property_id, property_id)
    if me.role is Role.ADMIN and property_id is None:
        org_users = select(User.id).where(User.org_id == me.org_id)
        where = where | (AuditEvent.property_id.is_(None) & AuditEvent.user_id.in_(org_users))
    query = select(AuditEvent).where(where)
    if action:
        query = query.where(AuditEvent.action == action)
    if since:
        query = query.where(AuditEvent.ts >= since)
    return page_of(session, query, AuditEvent.id, page, AuditOut.model_validate)
