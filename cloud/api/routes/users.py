"""Staff and tenant logins: created and re-roled by admins, every change audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import delete, select

from cloud.api.deps import (
    NowDep,
    SessionDep,
    bearer_or_cookie,
    guard,
    require_property,
    scoped_get,
)
from cloud.api.paging import BodyId, Page, PageQ, PathId, page_of
from cloud.api.problems import ProblemError
from cloud.models import Role, Tenant, User, UserProperty
from cloud.security import accounts, audit
from cloud.security.authz import Permission, Principal
from cloud.security.passwords import WeakPasswordError, hash_password

router = APIRouter(tags=["users"])
Admin = Annotated[Principal, guard(Permission.USERS_MANAGE, "org")]
AdminBody = Annotated[Principal, guard(Permission.USERS_MANAGE, "body")]
AdminPath = Annotated[Principal, guard(Permission.USERS_MANAGE, "path")]


class UserIn(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=1, max_length=1024)
    display_name: str = Field("", max_length=100)
    role: Role
    property_ids: list[BodyId] = Field(default_factory=list, max_length=1000)
    tenant_id: BodyId | None = None


class RoleIn(BaseModel):
    role: Role
    property_ids: list[BodyId] = Field(default_factory=list, max_length=1000)


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    property_ids: list[int]
    tenant_id: int | None
    active: bool


def user_out(session: SessionDep, user: User) -> UserOut:
    pids = session.scalars(select(UserProperty.property_id).where(UserProperty.user_id == user.id))
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        property_ids=sorted(pids),
        tenant_id=user.tenant_id,
        active=user.active,
    )


def _check_grant(
    session: SessionDep, me: Principal, role: Role, property_ids: list[int], tenant_id: int | None
) -> None:
    for pid in property_ids:
        require_property(me, pid)
    if role is Role.TENANT:
        tenant = session.get(Tenant, tenant_id) if tenant_id is not None else None
        if tenant is None or tenant.org_id != me.org_id:
            raise ProblemError(422, "a tenant login needs the tenant_id of a person on file")
    elif tenant_id is not None:
        raise ProblemError(422, "only a tenant login links to a tenant_id")


@router.post("/users", status_code=201)
def create_user(body: UserIn, me: AdminBody, session: SessionDep, now: NowDep) -> UserOut:
    _check_grant(session, me, body.role, body.property_ids, body.tenant_id)
    if session.scalar(select(User.id).where(User.username == body.username)) is not None:
        raise ProblemError(409, f"username {body.username!r} is taken")
    try:
        password_hash = hash_password(body.password)
    except WeakPasswordError as exc:
        raise ProblemError(422, str(exc)) from None
    user = User(
        org_id=me.org_id,
        username=body.username,
        display_name=body.display_name,
        password_hash=password_hash,
        role=body.role,
        tenant_id=body.tenant_id,
        created_at=now,
    )
    session.add(user)
    session.flush()
    session.add_all(UserProperty(user_id=user.id, property_id=p) for p in set(body.property_ids))
    detail = {"role": body.role, "property_ids": sorted(set(body.property_ids))}
    audit.about(session, me, "user.create", now, user, detail=detail)
    session.commit()
    return user_out(session, user)


@router.get("/users")
def list_users(me: Admin, session: SessionDep, page: PageQ) -> Page[UserOut]:
    query = select(User).where(User.org_id == me.org_id)
    return page_of(session, query, User.id, page, lambda u: user_out(session, u))


@router.put("/users/{user_id}/role")
def set_role(
    user_id: PathId, body: RoleIn, me: AdminPath, session: SessionDep, now: NowDep
) -> UserOut:
    user = scoped_get(session, me, User, user_id)
    if user.id == me.user_id and body.role is not Role.ADMIN:
        raise ProblemError(409, "an admin cannot demote themselves; ask another admin")
    _check_grant(session, me, body.role, body.property_ids, user.tenant_id)
    before = user_out(session, user)
    user.role = body.role
    session.execute(delete(UserProperty).where(UserProperty.user_id == user.id))
    session.add_all(UserProperty(user_id=user.id, property_id=p) for p in set(body.property_ids))
    after = {"role": body.role, "property_ids": sorted(set(body.property_ids))}
    detail = {"from": {"role": before.role, "property_ids": before.property_ids}, "to": after}
    audit.about(session, me, "user.role", now, user, detail=detail)
    session.commit()
    return user_out(session, user)


class SessionsOut(BaseModel):
    sessions_revoked: int


@router.post("/users/{user_id}/deactivate")
def deactivate_user(user_id: PathId, me: AdminPath, session: SessionDep, now: NowDep) -> UserOut:
    """The user can no longer sign in and every session of theirs ends now."""
    user = scoped_get(session, me, User, user_id)
    if user.id == me.user_id:
        raise ProblemError(409, "an admin cannot deactivate themselves; ask another admin")
    revoked = accounts.deactivate(session, user)
    audit.about(session, me, "user.deactivate", now, user, detail={"sessions_revoked": revoked})
    session.commit()
    return user_out(session, user)


@router.post("/users/{user_id}/activate")
def activate_user(user_id: PathId, me: AdminPath, session: SessionDep, now: NowDep) -> UserOut:
    user = scoped_get(session, me, User, user_id)
    user.active = True
    audit.about(session, me, "user.activate", now, user)
    session.commit()
    return user_out(session, user)


@router.post("/users/{user_id}/revoke-sessions")
def revoke_user_sessions(
    user_id: PathId, me: AdminPath, request: Request, session: SessionDep, now: NowDep
) -> SessionsOut:
    """End every session and bearer token of the user (a lost phone, a leaked token); an
    admin's own request keeps the session it came on."""
    user = scoped_get(session, me, User, user_id)
    keep = bearer_or_cookie(request) if user.id == me.user_id else None
    revoked = accounts.revoke_sessions(session, user.id, keep=keep)
    audit.about(session, me, "user.revoke_sessions", now, user, detail={"revoked": revoked})
    session.commit()
    return SessionsOut(sessions_revoked=revoked)
