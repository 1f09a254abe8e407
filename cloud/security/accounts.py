"""What happens to an account: a new password, deactivation, its sessions revoked. Shared by the
API and `anju cloud user`; the callers audit and commit."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from cloud.models import AuthToken, User
from cloud.security import tokens
from cloud.security.passwords import hash_password


def revoke_sessions(session: Session, user_id: int, *, keep: str | None = None) -> int:
    """Revoke every live token of the user but `keep` (the caller's own); how many went."""
    query = update(AuthToken).where(AuthToken.user_id == user_id, AuthToken.revoked.is_(False))
    if keep is not None:
        query = query.where(AuthToken.token_sha256 != tokens.digest(keep))
    result = session.execute(
        query.values(revoked=True).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def set_password(session: Session, user: User, password: str, *, keep: str | None = None) -> int:
    """A new password (WeakPasswordError if too short); every other session ends, since whoever
    knew the old one may hold one. Returns how many were revoked."""
    user.password_hash = hash_password(password)
    return revoke_sessions(session, user.id, keep=keep)


def deactivate(session: Session, user: User) -> int:
    """The user can no longer sign in, and every session ends now."""
    user.active = False
    return revoke_sessions(session, user.id)
