"""Login throttling that holds across API processes: both counters live in the database.

- Per source (an IPv4 address, or an IPv6 /64, which one machine usually holds whole): a sliding
  window of attempts (`login_attempts` rows). An attempt is written and committed first, then
  ranked among that source's attempts in the window by id, so concurrent requests on several
  processes cannot all slip under the limit.
- Per (username, source): `login_failures` counts password tries since the last success from
  that source, with an atomic `UPDATE ... RETURNING` before the password is checked. The first
  FREE_TRIES go at once; after try k >= FREE_TRIES the next waits min(FIRST_DELAY * 2**(k -
  FREE_TRIES), MAX_DELAY), and a try that comes early is refused without a check. So one source
  gets at most 5 tries at once, 11 in the first half hour, then 4 an hour (105 in a day) on one
  username, and a burst gets no more than the delays allow. Another source is not slowed at
  all: whoever fails from X cannot lock the user out at Y. Unknown usernames are counted the same
  way, so known and unknown names answer alike. A success clears its own source's row; rows
  idle for FORGET_AFTER go.

Helpers here never commit; the callers commit between the steps.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from cloud.db import as_utc
from cloud.db.bulk import insert_ignoring_duplicates
from cloud.models import LoginAttempt, LoginFailure

MAX_ATTEMPTS_PER_WINDOW = 10
WINDOW = timedelta(minutes=1)
FREE_TRIES = 5
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(minutes=15)
FORGET_AFTER = timedelta(days=1)
IPV6_SOURCE_PREFIX = 64


def source_of(ip: str) -> str:
    """What the throttle counts by: the address, or for IPv6 its /64."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/{IPV6_SOURCE_PREFIX}", strict=False))
    return str(address)


def record_attempt(session: Session, source: str, now: datetime) -> LoginAttempt:
    """Add this attempt (and forget attempts that left the window and idle failure counts,
    from every source)."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.ts <= now - WINDOW))
    session.execute(delete(LoginFailure).where(LoginFailure.not_before <= now - FORGET_AFTER))
    attempt = LoginAttempt(ip=source, ts=now)
    session.add(attempt)
    session.flush()
    return attempt


def seconds_to_wait(
    session: Session, attempt: LoginAttempt, now: datetime, limit: int = MAX_ATTEMPTS_PER_WINDOW
) -> int:
    """0 when `attempt` (committed) is within its source's limit, else when to retry."""
    in_window = (LoginAttempt.ip == attempt.ip) & (LoginAttempt.ts > now - WINDOW)
    rank = session.scalar(select(func.count()).where(in_window, LoginAttempt.id <= attempt.id))
    if (rank or 0) <= limit:
        return 0
    oldest = session.scalar(select(func.min(LoginAttempt.ts)).where(in_window))
    if oldest is None:
        return 1
    return _seconds_until(as_utc(oldest) + WINDOW, now)


def delay_after(try_number: int) -> timedelta:
    """How long the next try from the same source waits after try `try_number` failed."""
    if try_number < FREE_TRIES:
        return timedelta(0)
    doublings = min(try_number - FREE_TRIES, _DOUBLINGS_TO_CAP)
    return min(FIRST_DELAY * (1 << doublings), MAX_DELAY)


_DOUBLINGS_TO_CAP = math.ceil(math.log2(MAX_DELAY / FIRST_DELAY))


def count_try(session: Session, username: str, source: str, now: datetime) -> int | None:
    """Count one password try at `username` from `source`: its number since the last success
    from there, or None while that source must wait. The next try's time is set in the same
    statement, as if this one fails, so concurrent tries cannot all pass."""
    key = (LoginFailure.username == username) & (LoginFailure.source == source)
    insert_ignoring_duplicates(
        session,
        LoginFailure.__table__,
        [{"username": username, "source": source, "tries": 0, "not_before": now}],
    )
    tried = LoginFailure.tries + 1
    steps = [(tried < FREE_TRIES, now)] + [
        (tried == FREE_TRIES + k, now + delay_after(FREE_TRIES + k))
        for k in range(_DOUBLINGS_TO_CAP)
    ]
    return session.scalar(
        update(LoginFailure)
        .where(key, LoginFailure.not_before <= now)
        .values(tries=tried, not_before=case(*steps, else_=now + MAX_DELAY))
        .returning(LoginFailure.tries)
        .execution_options(synchronize_session=False)
    )


def retry_after(session: Session, username: str, source: str, now: datetime) -> int:
    """Seconds until `source` may try `username` again (at least 1)."""
    not_before = session.scalar(
        select(LoginFailure.not_before).where(
            LoginFailure.username == username, LoginFailure.source == source
        )
    )
    return 1 if not_before is None else _seconds_until(as_utc(not_before), now)


def forget(session: Session, username: str, source: str) -> None:
    """A correct password: this source's count starts again (other sources keep theirs)."""
    session.execute(
        delete(LoginFailure).where(LoginFailure.username == username, LoginFailure.source == source)
    )


def _seconds_until(when: datetime, now: datetime) -> int:
    return max(1, math.ceil((when - now).total_seconds()))
