"""Request-scoped dependencies, and the one authorization mechanism every route declares.

A route takes `me: Annotated[Principal, guard(Permission.X, "path")]`. The Guard authenticates
(bearer token or session cookie), checks the role's permission, and records how the route finds
its property (`scope`), which the authorization matrix test reads from the route table:
  path  - a resource id in the path; the route loads it with `scoped_get` (foreign → 404)
  body  - a property/building/unit id in the body; the route calls `require_property`
  list  - the route filters by `me.property_ids` (or a tenant's own records)
  org   - organisation-wide (admin work: properties, users, audit)
  self  - the signed-in user themselves
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, Request
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.api.problems import ProblemError
from cloud.meter_bindings import org_meter
from cloud.models import (
    Lease,
    LeaseTenant,
    Meter,
    Property,
    Role,
    Tenant,
    User,
    UserProperty,
    WorkOrder,
)
from cloud.security import audit, tokens
from cloud.security.authz import Permission, Principal
from cloud.security.client_address import TrustedProxies
from cloud.security.crypto import FieldKeys

SESSION_COOKIE = "anju_session"
Scope = Literal["path", "body", "list", "org", "self"]
# Denials of these are written to the audit log.
AUDITED_DENIALS = frozenset({Permission.TENANTS_REVEAL, Permission.USERS_MANAGE})


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


# Cheap dependencies are async so FastAPI does not hop to a worker thread for each of them.
async def get_keys(request: Request) -> FieldKeys:
    keys: FieldKeys = request.app.state.keys
    return keys


async def get_now(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


SessionDep = Annotated[Session, Depends(get_session)]
KeysDep = Annotated[FieldKeys, Depends(get_keys)]
NowDep = Annotated[datetime, Depends(get_now)]


def client_ip(request: Request) -> str:
    """The client's address for the throttle and the audit log (cloud.security.client_address)."""
    proxies: TrustedProxies = request.app.state.proxies
    peer = request.client.host if request.client else ""
    return proxies.client(peer, request.headers.getlist("x-forwarded-for"))


def bearer_or_cookie(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return request.cookies.get(SESSION_COOKIE)


def load_principal(session: Session, user: User, ip: str) -> Principal:
    if user.role is Role.ADMIN:
        query = select(Property.id).where(Property.org_id == user.org_id)
    else:
        query = select(UserProperty.property_id).where(UserProperty.user_id == user.id)
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        org_id=user.org_id,
        property_ids=frozenset(session.scalars(query)),
        tenant_id=user.tenant_id,
        ip=ip,
    )


@dataclass(frozen=True)
class Guard:
    permission: Permission
    scope: Scope

    def __call__(self, request: Request, session: SessionDep, now: NowDep) -> Principal:
        token = bearer_or_cookie(request)
        user = tokens.lookup(session, token, now) if token else None
        if user is None:
            raise ProblemError(
                401,
                "sign in first (bearer token or session cookie)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        me = load_principal(session, user, client_ip(request))
        if not me.can(self.permission):
            if self.permission in AUDITED_DENIALS:
                audit.record(session, me, str(self.permission), now, outcome="denied")
                session.commit()
            raise ProblemError(403, f"role {me.role} may not {self.permission}")
        return me


def guard(permission: Permission, scope: Scope) -> Any:
    """`Annotated[Principal, guard(...)]`: the route's declared permission and scope."""
    return Depends(Guard(permission, scope))


def guard_of(dependant_calls: list[Any]) -> Guard | None:
    """The Guard among a route's dependency callables (for the authorization matrix)."""
    found = [c for c in dependant_calls if isinstance(c, Guard)]
    return found[0] if found else None


def flush_or_conflict(session: Session, detail: str) -> None:
    """Flush; a unique-constraint clash becomes 409 with `detail`."""
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ProblemError(409, detail) from None


def not_found(kind: str, ident: object) -> ProblemError:
    return ProblemError(404, f"no {kind} {ident} in your scope")


def require_property(me: Principal, property_id: int) -> None:
    if not me.sees_property(property_id):
        raise not_found("property", property_id)


M = TypeVar("M")


def scoped_get(session: Session, me: Principal, model: type[M], ident: object) -> M:
    """Load a row the principal may see, else 404 (foreign rows are indistinguishable)."""
    obj = session.get(model, ident)
    if obj is None or not visible(session, me, obj):
        raise not_found(audit.kind_of(model), ident)
    return obj


def scoped_meter(session: Session, me: Principal, code: str) -> Meter:
    """The caller's organisation's meter with that code, if in scope; else 404 (as for one
    that does not exist: other organisations' codes are never revealed)."""
    meter = org_meter(session, me.org_id, code)
    if meter is None or not visible(session, me, meter):
        raise not_found("meter", code)
    return meter


def visible(session: Session, me: Principal, obj: object) -> bool:
    if me.is_tenant:
        if isinstance(obj, Tenant):
            return obj.id == me.tenant_id
        if isinstance(obj, Lease):
            return me.tenant_id in lease_parties(session, obj)
        if isinstance(obj, WorkOrder):  # the orders they reported
            return obj.tenant_id is not None and obj.tenant_id == me.tenant_id
        return False
    if isinstance(obj, User):
        return obj.org_id == me.org_id
    property_id = getattr(obj, "property_id", None)
    if property_id is None and isinstance(obj, Property):
        property_id = obj.id
    return property_id is not None and me.sees_property(property_id)


def lease_parties(session: Session, lease: Lease) -> set[int]:
    """The primary tenant and co-tenants of a lease."""
    co = session.scalars(select(LeaseTenant.tenant_id).where(LeaseTenant.lease_id == lease.id))
    return {lease.primary_tenant_id, *co}


def tenant_lease_filter(tenant_id: int) -> Any:
    """SQL condition: leases where the tenant is primary or co-tenant."""
    co = select(LeaseTenant.lease_id).where(LeaseTenant.tenant_id == tenant_id)
    return or_(Lease.primary_tenant_id == tenant_id, Lease.id.in_(co))
