"""The scheduled jobs: what there is, their latest runs, and running one now for a property.

A run asked for here takes the job's lock like the scheduler: while a run holds it, asking
again is a 409, never a second run. The scheduler's runs work on every organisation at once,
so they show only when and how they ended; their counts and errors are the operator's (the
log, `anju cloud jobs show`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from cloud.api.deps import NowDep, SessionDep, guard, not_found, require_property
from cloud.api.paging import BodyId, Page
from cloud.api.problems import ProblemError
from cloud.config import Settings
from cloud.jobs.billing import JobSettings
from cloud.jobs.history import latest_runs
from cloud.jobs.registry import cloud_jobs, find
from cloud.jobs.scheduler import Job
from cloud.jobs.trigger import JobBusyError, NotPerPropertyError, run_now, running
from cloud.models import JobRun
from cloud.security import audit
from cloud.security.authz import Permission, Principal

router = APIRouter(tags=["jobs"])
P = Permission
JobName = Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9-]+$")]


def get_jobs(request: Request) -> list[Job]:
    """The app's jobs, built on first use from its settings (as the scheduler builds them)."""
    state = request.app.state
    jobs: list[Job] | None = getattr(state, "jobs", None)
    if jobs is None:
        settings: Settings = state.settings
        jobs = state.jobs = cloud_jobs(settings, state.keys, JobSettings())
    return jobs


JobsDep = Annotated[list[Job], Depends(get_jobs)]


class RunOut(BaseModel):
    id: int
    name: str
    trigger: str  # schedule | manual
    property_id: int | None  # None: the scheduler's run over every property
    started_by: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str  # running | ok | failed | abandoned
    counts: dict[str, int] | None  # None on the scheduler's runs (every organisation's)
    error: str | None

    @classmethod
    def of(cls, run: JobRun) -> RunOut:
        everyone = run.property_id is None
        return cls(
            id=run.id, name=run.name, trigger=run.trigger, property_id=run.property_id,
            started_by="scheduler" if everyone else run.started_by, started_at=run.started_at,
            finished_at=run.finished_at, outcome=run.outcome,
            counts=None if everyone else run.counts, error=None if everyone else run.error,
        )  # fmt: skip


class JobOut(BaseModel):
    name: str
    schedule: str  # local time (ANJU_TIMEZONE)
    per_property: bool  # whether it can be run now for one property
    running: bool
    running_until: datetime | None  # the lock's expiry: the run ends by then at the latest


class JobDetail(JobOut):
    runs: list[RunOut]  # newest first: the scheduler's, and those asked for in your scope


def _job_out(job: Job, busy: dict[str, datetime]) -> dict[str, Any]:
    until = busy.get(job.name)
    return {"name": job.name, "schedule": job.schedule, "per_property": job.per_property
            is not None, "running": until is not None, "running_until": until}  # fmt: skip


@router.get("/jobs")
def list_jobs(
    me: Annotated[Principal, guard(P.JOBS_READ, "org")],
    session: SessionDep,
    jobs: JobsDep,
    now: NowDep,
) -> Page[JobOut]:
    busy = running(session, now)
    return Page(items=[JobOut(**_job_out(j, busy)) for j in jobs], next_after=None)


@router.get("/jobs/{name}")
def show_job(
    name: JobName,
    me: Annotated[Principal, guard(P.JOBS_READ, "org")],
    session: SessionDep,
    jobs: JobsDep,
    now: NowDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Runs to show.")] = 10,
) -> JobDetail:
    job = find(jobs, name)
    if job is None:
        raise not_found("job", name)
    runs = latest_runs(session, name, limit=limit, now=now, property_ids=me.property_ids)
    return JobDetail(**_job_out(job, running(session, now)), runs=[RunOut.of(r) for r in runs])


class RunIn(BaseModel):
    property_id: BodyId


@router.post("/jobs/{name}/runs", status_code=201)
def run_job(
    name: JobName,
    body: RunIn,
    request: Request,
    me: Annotated[Principal, guard(P.JOBS_RUN, "body")],
    session: SessionDep,
    jobs: JobsDep,
    now: NowDep,
) -> RunOut:
    """Run the job now for one property and answer when it has finished (`outcome` says how).
    409 while a run of it is in progress; 422 for a job that works on every organisation."""
    require_property(me, body.property_id)
    job = find(jobs, name)
    if job is None:
        raise not_found("job", name)
    session.commit()  # end this request's read before the job writes (SQLite: one writer)
    state = request.app.state
    try:
        run = run_now(state.sessions, job, body.property_id, by=me.username, clock=state.clock,
                      tz=state.settings.zone)  # fmt: skip
    except JobBusyError as exc:
        raise ProblemError(409, str(exc)) from None
    except NotPerPropertyError as exc:
        raise ProblemError(422, str(exc)) from None
    audit.record(session, me, "job.run", now, target_type="job", target_id=name,
                 property_id=body.property_id, ip=me.ip,
                 detail={"run_id": run.id, "outcome": run.outcome})  # fmt: skip
    session.commit()
    return RunOut.of(run)
