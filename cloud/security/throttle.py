"""Login throttling that holds across API processes: both counters live in the database.

- Per client address: a sliding window of attempts (`login_attempts` rows). An attempt is
  written and committed first, then ranked among that address's attempts in the window by id,
  so concurrent requests on several processes cannot all slip under the limit.
- Per account: `users.failed_logins` counts tries with an atomic `UPDATE ... RETURNING` before the
  password is checked. Only the first LOCKOUT_AFTER_FAILURES tries get a password check; the try
  that fails as that number, or any try beyond it (a burst in flight), locks the account for
  LOCKOUT_FOR. A correct password resets the count.

Helpers here never commit; the login route commits between the steps.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from cloud.models import LoginAttempt, User

MAX_ATTEMPTS_PER_WINDOW = 10
WINDOW = timedelta(minutes=1)
LOCKOUT_AFTER_FAILURES = 5
LOCKOUT_FOR = timedelta(minutes=15)


def record_attempt(session: Session, ip: str, now: datetime) -> LoginAttempt:
    """Add this attempt (and forget attempts that left the window, from every address)."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.ts <= now - WINDOW))
    attempt = LoginAttempt(ip=ip, ts=now)
    session.add(attempt)
    session.flush()
    return attempt


def seconds_to_wait(
    session: Session, attempt: LoginAttempt, now: datetime, limit: int = MAX_ATTEMPTS_PER_WINDOW
) -> int:
    """0 when `attempt` (committed) is within its address's limit, else when to retry."""
    in_window = (LoginAttempt.ip == attempt.ip) & (LoginAttempt.ts > now - WINDOW)
    rank = session.scalar(select(func.count()).where(in_window, LoginAttempt.id <= attempt.id))
    if (rank or 0) <= limit:
        return 0
    oldest = session.scalar(select(func.min(LoginAttempt.ts)).where(in_window))
    if oldest is None:
        return 1
    oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=now.tzinfo)
    return max(1, math.ceil((oldest + WINDOW - now).total_seconds()))


def count_try(session: Session, user_id: int, now: datetime) -> int | None:
    """Count one try against the account: its number since the last success or lock, or None
    while the account is locked."""
    unlocked = or_(User.locked_until.is_(None), User.locked_until <= now)
    return session.scalar(
        update(User)
        .where(User.id == user_id, unlocked)
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins)
        .execution_options(synchronize_session=False)
    )


def may_check_password(try_number: int | None) -> bool:
    return try_number is not None and try_number <= LOCKOUT_AFTER_FAILURES


def locks_on_failure(try_number: int) -> bool:
    return try_number >= LOCKOUT_AFTER_FAILURES


def lock(session: Session, user_id: int, now: datetime) -> None:
    session.execute(
        update(User)
        .where(User.id == user_id)
        .values(locked_until=now + LOCKOUT_FOR, failed_logins=0)
        .execution_options(synchronize_session=False)
    )


def reset(session: Session, user_id: int) -> None:
    """A correct password: the count starts again and any lock is lifted."""
    session.execute(
        update(User)
        .where(User.id == user_id)
        .values(locked_until=None, failed_logins=0)
        .execution_options(synchronize_session=False)
    )
