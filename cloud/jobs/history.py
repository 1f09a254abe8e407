"""What each job did: a row per run, the scheduler's (over every property, `property_id`
NULL) or one a person asked for (one property). The latest KEEP runs of each job are kept.

A run's process can die mid-job (killed, out of memory, the machine lost): its row would say
"running" for ever and its lock would keep the job from running until the lock's lease ends.
So a run records its owner process and its lease (the lock's), and `recover` (called before a
job starts and when runs are listed) marks a running run "abandoned" once its owner is gone
(same host) or its lease has ended (any host), and frees the lock it held.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from cloud.db import as_utc
from cloud.jobs.owner import gone, this_process
from cloud.models import JobLock, JobRun

KEEP = 100  # runs kept per job (a job every minute would otherwise grow without end)
MAX_ERROR = 2000  # characters of an error kept on its run
Counts = dict[str, int]  # what a run did, e.g. {"fees": 3}


def start_run(
    session: Session,
    name: str,
    *,
    trigger: str,
    by: str,
    key: str,
    now: datetime,
    holder: str,
    lease_until: datetime,
    property_id: int | None = None,
) -> int:
    """Record a run as started by this process under the lock `holder` took until
    `lease_until` (committed, so it shows while it runs); returns its id."""
    run = JobRun(name=name, trigger=trigger, property_id=property_id, started_by=by, key=key,
                 started_at=now, outcome="running", counts={}, error="", owner=this_process(),
                 holder=holder, lease_until=lease_until)  # fmt: skip
    session.add(run)
    session.commit()
    return run.id


def finish_run(
    session: Session, run_id: int, *, now: datetime, counts: Counts, error: str
) -> JobRun:
    """Record how a run ended and drop the job's runs beyond the latest KEEP; commits."""
    session.execute(
        update(JobRun)
        .where(JobRun.id == run_id)
        .values(
            finished_at=now,
            outcome="failed" if error else "ok",
            counts=counts,
            error=error[:MAX_ERROR],
        )
        .execution_options(synchronize_session=False)
    )
    run = session.get_one(JobRun, run_id, populate_existing=True)
    oldest_kept = session.scalar(
        select(JobRun.id)
        .where(JobRun.name == run.name)
        .order_by(JobRun.id.desc())
        .offset(KEEP - 1)
        .limit(1)
    )
    if oldest_kept is not None:
        session.execute(delete(JobRun).where(JobRun.name == run.name, JobRun.id < oldest_kept))
    session.commit()
    session.refresh(run)
    return run


def counts_of(result: object) -> Counts:
    """A job's return value as counts: a mapping of names to whole numbers, else nothing."""
    if not isinstance(result, dict):
        return {}
    return {str(k): v for k, v in result.items() if isinstance(v, int)}


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def recover(session: Session, now: datetime) -> list[int]:
    """Mark the runs whose process ended or whose lease ran out before they finished as
    abandoned, and free the job lock each held; commits. Returns their ids."""
    found = []
    for run in session.scalars(select(JobRun).where(JobRun.outcome == "running")):
        lease = as_utc(run.lease_until) if run.lease_until is not None else None
        if run.owner and gone(run.owner):
            why = f"abandoned: its process {run.owner} ended before it finished"
        elif lease is not None and lease < now:
            why = f"abandoned: its lease ran out at {lease:%Y-%m-%d %H:%M:%S} UTC unfinished"
        else:
            continue
        run.outcome, run.finished_at, run.error = "abandoned", now, why
        found.append(run.id)
        if run.holder and lease is not None:
            session.execute(
                update(JobLock)
                .where(
                    JobLock.name == run.name,
                    JobLock.holder == run.holder,
                    JobLock.locked_until <= lease,  # the hold it took, not a later one
                )
                .values(holder="", locked_until=None)
                .execution_options(synchronize_session=False)
            )
    if found:
        session.commit()
    return found


def latest_runs(
    session: Session,
    name: str,
    *,
    limit: int,
    now: datetime,
    property_ids: Collection[int] | None = None,
) -> list[JobRun]:
    """The job's latest runs, newest first, abandoned ones recovered first (`recover`). With
    `property_ids`: the scheduler's runs and the runs asked for one of those properties (a
    caller's scope)."""
    recover(session, now)
    query = select(JobRun).where(JobRun.name == name)
    if property_ids is not None:
        query = query.where(
            or_(JobRun.property_id.is_(None), JobRun.property_id.in_(list(property_ids)))
        )
    return list(session.scalars(query.order_by(JobRun.id.desc()).limit(limit)))
