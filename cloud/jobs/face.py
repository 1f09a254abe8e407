"""The face job: delete the embeddings of people whose access ended (PIPL: biometric data is
kept only while it serves its purpose). A grace keeps them across a lease renewal's gap."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from cloud.face.enrollment import purge_ended_access
from cloud.jobs.billing import JobSettings
from cloud.jobs.scheduler import Job
from cloud.security import audit

PURGE_JOB = "face-purge"


def face_jobs(settings: JobSettings) -> list[Job]:
    grace = timedelta(days=settings.jobs_face_purge_grace_days)

    def purge(session: Session, today: date, now: datetime) -> dict[str, int]:
        purged = purge_ended_access(session, now, grace)
        for tenant_id in purged:
            audit.record(
                session,
                None,
                "face.purge",
                now,
                target_type="tenant",
                target_id=tenant_id,
                username=f"job:{PURGE_JOB}",
                detail={"grace_days": settings.jobs_face_purge_grace_days},
            )
        return {"tenants": len(purged)}

    return [Job(PURGE_JOB, settings.jobs_face_purge_at, purge)]
