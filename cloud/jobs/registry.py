"""Every scheduled job of the cloud, in one list: the scheduler runs it, the jobs API and
`anju cloud jobs` show it and run its jobs on demand."""

from __future__ import annotations

from cloud.config import Settings
from cloud.jobs.billing import JobSettings, billing_jobs
from cloud.jobs.face import face_jobs
from cloud.jobs.maintenance import maintenance_jobs
from cloud.jobs.scheduler import Job
from cloud.security.crypto import FieldKeys


def cloud_jobs(settings: Settings, keys: FieldKeys | None, jobs: JobSettings) -> list[Job]:
    """`keys` decrypt tenants' email addresses for the reminders (none: in-app only)."""
    return (
        billing_jobs(jobs, keys, tz=settings.zone, max_back_months=settings.billing_max_back_months)
        + face_jobs(jobs)
        + maintenance_jobs(keys=keys, policy=settings.webhook_policy)
    )


def find(jobs: list[Job], name: str) -> Job | None:
    return next((j for j in jobs if j.name == name), None)
