"""`anju cloud jobs list|show|run`: the scheduled jobs, their latest runs, one run now.

The shell's operator sees every run in full (the API shows the scheduler's runs without their
figures, since they span every organisation). A run here takes the job's lock like the
scheduler and the API, so a job already running is refused, not run twice."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from cloud.models import JobRun


@click.group("jobs")
def jobs() -> None:
    """Scheduled jobs: list them, show a job's runs, run one now."""


def _line(run: JobRun) -> str:
    finished = f"{run.finished_at:%Y-%m-%d %H:%M:%S}" if run.finished_at else "-"
    scope = f"property {run.property_id}" if run.property_id is not None else "every property"
    counts = " ".join(f"{k}={v}" for k, v in sorted(run.counts.items()))
    text = (
        f"{run.id:>6}  {run.trigger:<8}  {run.started_at:%Y-%m-%d %H:%M:%S}  {finished:<19}  "
        f"{run.outcome:<7}  {scope}  by {run.started_by}  {counts}"
    )
    return f"{text.rstrip()}\n        error: {run.error}" if run.error else text.rstrip()


@jobs.command("list")
def jobs_list() -> None:
    """Every job: when it runs, whether it can run for one property, its last run."""
    from anju.commands.cloud_admin import cloud_session
    from cloud.jobs.billing import JobSettings
    from cloud.jobs.history import latest_runs
    from cloud.jobs.registry import cloud_jobs
    from cloud.jobs.trigger import running
    from runtime.clock import utc_now

    with cloud_session() as (settings, session, keys):
        now = utc_now()
        busy = running(session, now)
        for job in cloud_jobs(settings, keys, JobSettings()):
            last = latest_runs(session, job.name, limit=1, now=now)
            state = "running" if job.name in busy else (last[0].outcome if last else "never run")
            per = "per property" if job.per_property is not None else "all at once"
            click.echo(f"{job.name:<22} {job.schedule:<28} {per:<13} {state}")


@jobs.command("show")
@click.argument("name")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
def jobs_show(name: str, limit: int) -> None:
    """A job's latest runs, newest first: started, finished, outcome, counts, error."""
    from anju.commands.cloud_admin import cloud_session
    from cloud.jobs.billing import JobSettings
    from cloud.jobs.history import latest_runs
    from cloud.jobs.registry import cloud_jobs, find
    from protocols.errors import AnjuError
    from runtime.clock import utc_now

    with cloud_session() as (settings, session, keys):
        job = find(cloud_jobs(settings, keys, JobSettings()), name)
        if job is None:
            raise AnjuError(f"no job {name!r} (anju cloud jobs list names them)")
        click.echo(f"{job.name}: {job.schedule} ({settings.timezone})")
        for run in latest_runs(session, name, limit=limit, now=utc_now()):
            click.echo(_line(run))


@jobs.command("run")
@click.argument("name")
@click.option("--property", "property_id", type=click.IntRange(1, 2**31 - 1), default=None,
              help="Only this property (default: all, as the scheduler runs it).")  # fmt: skip
def jobs_run(name: str, property_id: int | None) -> None:
    """Run job NAME now; refused while a run of it is in progress. Exits 1 if the run fails."""
    from anju.commands.cloud_admin import cloud_session
    from cloud.db import make_sessionmaker
    from cloud.jobs.billing import JobSettings
    from cloud.jobs.registry import cloud_jobs, find
    from cloud.jobs.trigger import run_now
    from cloud.models import Property
    from cloud.security import audit
    from protocols.errors import AnjuError
    from runtime.clock import utc_now

    with cloud_session() as (settings, session, keys):
        job = find(cloud_jobs(settings, keys, JobSettings()), name)
        if job is None:
            raise AnjuError(f"no job {name!r} (anju cloud jobs list names them)")
        if property_id is not None and session.get(Property, property_id) is None:
            raise AnjuError(f"no property {property_id}")
        session.commit()
        sessions = make_sessionmaker(session.get_bind())  # type: ignore[arg-type]
        run = run_now(sessions, job, property_id, by="cli", clock=utc_now, tz=settings.zone)
        audit.record(session, None, "job.run", utc_now(), username="cli", target_type="job",
                     target_id=name, property_id=property_id,
                     detail={"run_id": run.id, "outcome": run.outcome, "via": "cli"})  # fmt: skip
        session.commit()
    click.echo(_line(run))
    if run.outcome == "failed":
        raise SystemExit(1)
