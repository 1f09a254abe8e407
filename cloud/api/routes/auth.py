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
from cloud.models import AuthToken, User
from cloud.security import audit, throttle, tokens
from cloud.security.authz import ROLE_PERMISSIONS, Permission, Principal
from cloud.security.passwords import hash_password, needs_rehash, verify_password

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
    """Rate-limited per client address; an account locks after repeated failures. Both
    counters are in the database, so they hold across API processes (cloud.security.throttle)."""
    ip = client_ip(request)
    attempt = throttle.record_attempt(session, ip, now)
    session.commit()
    wait = throttle.seconds_to_wait(session, attempt, now)
    if wait:
        session.delete(attempt)  # a refused attempt does not extend the window
        session.commit()
        raise ProblemError(
            429,
            "too many login attempts from this address; wait and retry",
            headers={"Retry-After": str(wait)},
        )
    user = session.scalar(select(User).where(User.username == body.username))
    try_number = None if user is None else throttle.count_try(session, user.id, now)
    session.commit()  # other processes see this try before the (slow) password check
    if user is not None and not throttle.may_check_password(try_number):
        if try_number is not None:  # a burst beyond the limit: lock now
            throttle.lock(session, user.id, now)
            _audit_login(session, now, body.username, ip, user, "auth.lockout", "ok")
        _audit_login(session, now, body.username, ip, user, "auth.login", "locked")
        session.commit()
        raise ProblemError(403, "account locked after repeated failures; try again later")
    ok = verify_password(user.password_hash if user else None, body.password)
    if user is None or try_number is None or not ok or not user.active:
        if user is not None and try_number is not None and throttle.locks_on_failure(try_number):
            throttle.lock(session, user.id, now)
            _audit_login(session, now, body.username, ip, user, "auth.lockout", "ok")
        _audit_login(session, now, body.username, ip, user, "auth.login", "failed")
        session.commit()
        raise ProblemError(401, "wrong username or password")
    throttle.reset(session, user.id)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(body.password)
    token, expires = tokens.issue(session, user.id, body.kind, now)
    _audit_login(session, now, user.username, ip, user, "auth.login", "ok", kind=body.kind)
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


def _audit_login(
    session: SessionDep,
    now: datetime,
    username: str,
    ip: str,
    user: User | None,
    action: str,
    outcome: str,
    **detail: str,
) -> None:
    audit.record(
        session,
        None,
        action,
        now,
        username=username,
        ip=ip,
        user_id=user.id if user else None,
        target_type="user" if user else "",
        target_id=user.id if user else "",
        outcome=outcome,
        detail=detail,
    )


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
