"""A job lock in the database, the same on SQLite and PostgreSQL.

Taking the lock is one conditional UPDATE: it succeeds only when nobody holds the lock (or the
holder's lease on it ran out, i.e. it crashed) and the job has not yet completed `key` (the day).
The database makes the UPDATE atomic, so of two instances trying at once exactly one gets
rowcount 1. The lock is committed before the job runs, so the other instance sees it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, update
from sqlalchemy.orm import Session

from cloud.db.bulk import insert_ignoring_duplicates
from cloud.models import JobLock


def try_acquire(
    session: Session, name: str, *, key: str, holder: str, now: datetime, ttl: timedelta
) -> bool:
    """Take the lock of job `name` for `key`; commits. False: someone has it or `key` is done."""
    return _take(session, name, holder, now + ttl, now, JobLock.last_key != key)


def try_hold(session: Session, name: str, *, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take the lock of job `name` whatever it last completed (a run a person asked for);
    commits. False: a run of it is in progress (the scheduler's or another person's)."""
    return _take(session, name, holder, now + ttl, now)


def _take(
    session: Session,
    name: str,
    holder: str,
    until: datetime,
    now: datetime,
    *also: ColumnElement[bool],
) -> bool:
    insert_ignoring_duplicates(session, JobLock.__table__, [{"name": name, "last_key": ""}])
    got = session.execute(
        update(JobLock)
        .where(
            JobLock.name == name,
            or_(JobLock.locked_until.is_(None), JobLock.locked_until < now),
            *also,
        )
        .values(holder=holder, locked_until=until)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(got.rowcount == 1)  # type: ignore[attr-defined]


def release(session: Session, name: str, *, holder: str, key: str | None, now: datetime) -> None:
    """Give the lock back; with `key`, record that the job completed it. Commits."""
    values: dict[str, object] = {"holder": "", "locked_until": None}
    if key is not None:
        values |= {"last_key": key, "last_finished": now}
    session.execute(
        update(JobLock)
        .where(JobLock.name == name, JobLock.holder == holder)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
