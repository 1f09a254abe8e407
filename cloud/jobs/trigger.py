"""Running a job now for one property, as a person asks.

It takes the same database lock as the scheduler, so a job never runs twice at once: while
either holds it, the other is refused. It does not record the day as done, so the scheduled
run still happens; its run is recorded like the scheduler's (cloud/jobs/history.py).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.jobs.history import Counts, counts_of, describe, finish_run, recover, start_run
from cloud.jobs.lock import release, try_hold
from cloud.jobs.scheduler import LOCK_TTL, Job
from cloud.models import JobLock, JobRun
from protocols.errors import AnjuError

log = logging.getLogger(__name__)


class JobBusyError(AnjuError):
    """A run of the job is in progress; it is not started a second time."""


class NotPerPropertyError(AnjuError):
    """The job works on every organisation at once, so nobody scoped to a property runs it."""


def running(session: Session, now: datetime) -> dict[str, datetime]:
    """Jobs whose lock is held now, with the time the hold runs out at the latest; a hold
    whose run's process died is freed first (`recover`)."""
    recover(session, now)
    rows = session.execute(
        select(JobLock.name, JobLock.locked_until).where(JobLock.locked_until >= now)
    )
    return {name: until for name, until in rows if until is not None}


def run_now(
    sessions: sessionmaker[Any],
    job: Job,
    property_id: int | None,
    *,
    by: str,
    clock: Callable[[], datetime],
    tz: ZoneInfo,
) -> JobRun:
    """Run `job` now for one property (None: all of it, as the scheduler does; the shell's
    operator), under the job's lock; the run's row, failed or not.

    JobBusyError while a run of the job (scheduled or asked for) holds the lock;
    NotPerPropertyError for one property of a job that works on every organisation at once."""
    per_property = job.per_property
    if property_id is not None and per_property is None:
        raise NotPerPropertyError(
            f"job {job.name} works on every organisation at once: it runs on its schedule only"
        )
    now = clock()
    holder = f"{by}:{secrets.token_hex(4)}"
    with sessions() as session:
        recover(session, now)
        if not try_hold(session, job.name, holder=holder, now=now, ttl=LOCK_TTL):
            until = session.scalar(select(JobLock.locked_until).where(JobLock.name == job.name))
            held = (
                f" (its lock is held until {until:%Y-%m-%d %H:%M} UTC at the latest)"
                if until
                else ""
            )
            raise JobBusyError(
                f"job {job.name} is running now{held}; it was not started again: try when it"
                " has finished"
            )
    try:
        with sessions() as session:
            run_id = start_run(session, job.name, trigger="manual", by=by, key="", now=now,
                               holder=holder, lease_until=now + LOCK_TTL,
                               property_id=property_id)  # fmt: skip
        counts: Counts = {}
        error = ""
        try:
            today = now.astimezone(tz).date()
            with sessions() as session:
                if property_id is None:
                    counts = counts_of(job.run(session, today, now))
                else:
                    assert per_property is not None
                    counts = per_property(session, property_id, today, now)
                session.commit()
        except Exception as exc:
            log.exception("job %s for property %s failed", job.name, property_id)
            error = describe(exc)
        with sessions() as session:
            return finish_run(session, run_id, now=clock(), counts=counts, error=error)
    finally:
        with sessions() as session:
            release(session, job.name, holder=holder, key=None, now=now)
