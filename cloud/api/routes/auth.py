"""Login (session cookie for browsers, bearer token for API clients), logout, who am I."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from cloud.api.deps import (
    SESSION_COOKIE,
    NowDep,
    SessionDep,
    bearer_or_cookie,
    client_ip,
    guard,
)
from cloud.api.problems import ProblemError
from cloud.db import as_utc
from cloud.models import AuthToken, User
from cloud.security import audit, tokens
from cloud.security.authz import ROLE_PERMISSIONS, Permission, Principal
from cloud.security.passwords import hash_password, needs_rehash, verify_password
from cloud.security.throttle import LOCKOUT_AFTER_FAILURES, LOCKOUT_FOR

router = APIRouter(tags=["auth"])


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    kind: Literal["session", "bearer"] = "bearer"


class LoginOut(BaseModel):
    kind: Literal["session", "bearer"]
    token: str | None  # bearer only; a session travels in its HttpOnly cookie
    expires_at: datetime


class MeOut(BaseModel):
    user_id: int
    username: str
    role: str
    property_ids: list[int]
    tenant_id: int | None
    permissions: list[str]


@router.post("/auth/login", responses={401: {}, 403: {}, 429: {}})
def login(
    body: LoginIn, request: Request, response: Response, session: SessionDep, now: NowDep
) -> LoginOut:
    """Rate-limited per client address; an account locks after repeated failures."""
    ip = client_ip(request)
    throttle = request.app.state.throttle
    if not throttle.allow(ip, now):
        raise ProblemError(
            429,
            "too many login attempts from this address; wait and retry",
            headers={"Retry-After": str(throttle.retry_after(ip, now))},
        )
    user = session.scalar(select(User).where(User.username == body.username))
    if user is not None and user.locked_until is not None and as_utc(user.locked_until) > now:
        audit.record(
            session,
            None,
            "auth.login",
            now,
            username=body.username,
            ip=ip,
            user_id=user.id,
            outcome="locked",
        )
        session.commit()
        raise ProblemError(403, "account locked after repeated failures; try again later")
    ok = verify_password(user.password_hash if user else None, body.password)
    if user is None or not ok or not user.active:
        if user is not None:
            user.failed_logins += 1
            if user.failed_logins >= LOCKOUT_AFTER_FAILURES:
                user.locked_until = now + LOCKOUT_FOR
                user.failed_logins = 0
                audit.record(
                    session,
                    None,
                    "auth.lockout",
                    now,
                    username=body.username,
                    ip=ip,
                    user_id=user.id,
                    target_type="user",
                    target_id=user.id,
                )
        audit.record(
            session,
            None,
            "auth.login",
            now,
            username=body.username,
            ip=ip,
            user_id=user.id if user else None,
            outcome="failed",
        )
        session.commit()
        raise ProblemError(401, "wrong username or password")
    user.failed_logins = 0
    user.locked_until = None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(body.password)
    token, expires = tokens.issue(session, user.id, body.kind, now)
    audit.record(
        session,
        None,
        "auth.login",
        now,
        username=user.username,
        ip=ip,
        user_id=user.id,
        target_type="user",
        target_id=user.id,
        detail={"kind": body.kind},
    )
    session.commit()
    if body.kind == "session":
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int((expires - now).total_seconds()),
            httponly=True,
            samesite="strict",
            secure=request.app.state.settings.env == "production",
            path="/",
        )
        return LoginOut(kind="session", token=None, expires_at=expires)
    return LoginOut(kind="bearer", token=token, expires_at=expires)


@router.post("/auth/logout", status_code=204)
def logout(
    me: Annotated[Principal, guard(Permission.SELF, "self")],
    request: Request,
    response: Response,
    session: SessionDep,
) -> None:
    token = bearer_or_cookie(request)
    row = session.get(AuthToken, tokens.digest(token)) if token else None
    if row is not None and row.user_id == me.user_id:
        row.revoked = True
        session.commit()
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/auth/me")
def who_am_i(me: Annotated[Principal, guard(Permission.SELF, "self")]) -> MeOut:
    return MeOut(
        user_id=me.user_id,
        username=me.username,
        role=me.role,
        property_ids=sorted(me.property_ids),
        tenant_id=me.tenant_id,
        permissions=sorted(ROLE_PERMISSIONS[me.role]),
    )
