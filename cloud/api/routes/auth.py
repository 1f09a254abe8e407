"""Login (session cookie for browsers, bearer token for API clients), logout, who am I."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

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
from cloud.security import accounts, audit, throttle, tokens
from cloud.security.authz import ROLE_PERMISSIONS, Permission, Principal
from cloud.security.passwords import (
    WeakPasswordError,
    hash_password,
    needs_rehash,
    verify_password,
)

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


@router.post("/auth/login", responses={401: {}, 429: {}})
def login(
    body: LoginIn, request: Request, response: Response, session: SessionDep, now: NowDep
) -> LoginOut:
    """Rate-limited per client address, and per username and address with a growing delay;
    unknown usernames are throttled and checked against a dummy hash like known ones, so the
    answers do not tell them apart (cloud.security.throttle)."""
    user = sign_in(session, request, now, body.username, body.password)
    token, expires = tokens.issue(session, user.id, body.kind, now)
    audit_login(session, now, user.username, client_ip(request), user, "auth.login", "ok",
                 kind=body.kind)  # fmt: skip
    session.commit()
    if body.kind == "session":
        set_session_cookie(request, response, token, expires, now)
        return LoginOut(kind="session", token=None, expires_at=expires)
    return LoginOut(kind="bearer", token=token, expires_at=expires)


def sign_in(
    session: Session, request: Request, now: datetime, username: str, password: str
) -> User:
    """The active user behind a username and password, through both throttles; a failure is
    audited and answered 401 (429 while throttled). The caller issues the token."""
    ip = client_ip(request)
    source = throttle.source_of(ip)
    attempt = throttle.record_attempt(session, source, now)
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
    user = session.scalar(select(User).where(User.username == username))
    checked = check_password(session, now, username, password, user, ip)
    if user is None or not checked or not user.active:
        outcome = "inactive" if user is not None and checked else "failed"
        audit_login(session, now, username, ip, user, "auth.login", outcome)
        session.commit()
        raise ProblemError(401, "wrong username or password")
    throttle.forget(session, user.username, source)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def set_session_cookie(
    request: Request, response: Response, token: str, expires: datetime, now: datetime
) -> None:
    """HttpOnly and SameSite=Strict always; Secure unless ANJU_COOKIE_SECURE=false (plain-HTTP
    development on loopback)."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int((expires - now).total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.session_cookie_secure,
        path="/",
    )


def check_password(
    session: SessionDep,
    now: datetime,
    username: str,
    password: str,
    user: User | None,
    ip: str,
) -> bool:
    """The password check behind the per-(username, source) throttle: the try is counted and
    committed first; a source that must wait gets 429 without a check (audited). The caller
    clears the count (`throttle.forget`) when it lets the user in."""
    source = throttle.source_of(ip)
    if throttle.count_try(session, username, source, now) is None:
        wait = throttle.retry_after(session, username, source, now)
        audit_login(session, now, username, ip, user, "auth.login", "throttled")
        session.commit()
        raise ProblemError(
            429,
            "too many failed sign-ins; wait and retry",
            headers={"Retry-After": str(wait)},
        )
    session.commit()  # other processes see this try before the (slow) password check
    return verify_password(user.password_hash if user else None, password)


def audit_login(
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


class PasswordIn(BaseModel):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class PasswordOut(BaseModel):
    sessions_revoked: int


@router.post("/auth/password", responses={403: {}, 422: {}, 429: {}})
def change_password(
    body: PasswordIn,
    me: Annotated[Principal, guard(Permission.SELF, "self")],
    request: Request,
    session: SessionDep,
    now: NowDep,
) -> PasswordOut:
    """Change one's own password: the old one is checked behind the login throttle (a stolen
    session cannot guess it faster than a login could); the caller's other sessions end."""
    user = session.get_one(User, me.user_id)
    if not check_password(session, now, user.username, body.old_password, user, me.ip):
        audit.about(session, me, "user.password", now, user, outcome="failed")
        session.commit()
        raise ProblemError(403, "the old password is wrong")
    throttle.forget(session, user.username, throttle.source_of(me.ip))
    try:
        revoked = accounts.set_password(
            session, user, body.new_password, keep=bearer_or_cookie(request)
        )
    except WeakPasswordError as exc:
        session.commit()  # the cleared count stands: the old password was right
        raise ProblemError(422, str(exc)) from None
    audit.about(session, me, "user.password", now, user, detail={"sessions_revoked": revoked})
    session.commit()
    return PasswordOut(sessions_revoked=revoked)
