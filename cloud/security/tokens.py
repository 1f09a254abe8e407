"""Opaque login tokens: 256 random bits to the client, only their SHA-256 in the database."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db import as_utc
from cloud.models import AuthToken, User

SESSION_TTL = timedelta(hours=12)
BEARER_TTL = timedelta(days=30)
TTL = {"session": SESSION_TTL, "bearer": BEARER_TTL}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, user_id: int, kind: str, now: datetime) -> tuple[str, datetime]:
    """A new token for the user; the caller commits. Returns (secret, expiry)."""
    token = secrets.token_urlsafe(32)
    expires = now + TTL[kind]
    session.add(
        AuthToken(
            token_sha256=digest(token),
            user_id=user_id,
            kind=kind,
            created_at=now,
            expires_at=expires,
        )
    )
    return token, expires


def lookup(session: Session, token: str, now: datetime) -> User | None:
    """The active user a live token belongs to (one query: every request pays it)."""
    found = session.execute(
        select(AuthToken, User)
        .join(User, User.id == AuthToken.user_id)
        .where(AuthToken.token_sha256 == digest(token))
    ).one_or_none()
    if found is None:
        return None
    row, user = found
    if row.revoked or as_utc(row.expires_at) <= now or not user.active:
        return None
    return user
