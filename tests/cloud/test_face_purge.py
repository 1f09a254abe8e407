"""The scheduled face purge: embeddings go once access has been over for the grace, counted
from the lease's real end (early termination, closing) or, for an enrollment made without
access, from the enrollment; one instance runs it per day, and each deletion is audited."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db import make_engine, make_sessionmaker
from cloud.face import enrollment as rules
from cloud.jobs.billing import JobSettings
from cloud.jobs.face import PURGE_JOB, face_jobs
from cloud.jobs.scheduler import run_due
from cloud.models import AuditEvent, FaceEnrollment, LeaseStatus, LeaseTenant
from cloud.security.crypto import FieldKeys, generate_key
from protocols.face.contract import l2_normalise
from tests.cloud.conftest import add_lease, add_portfolio, add_tenant
from tests.cloud.world import cn_id

TZ = ZoneInfo("Asia/Shanghai")
JUNE_1 = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai: past the 03:00 job time
VECTOR = l2_normalise(np.ones((1, 192), dtype=np.float32))
KEYS = FieldKeys(current="k1", keys={"k1": generate_key()}, index_key=generate_key())


def _world(session: Session) -> dict[str, int]:
    """Five enrolled people; beside each, the first day (grace 7 days) their purge is due."""
    prop, _, unit = add_portfolio(session)
    names = ("terminated", "co_tenant", "closed", "draft", "back")
    people = {
        name: add_tenant(session, KEYS, prop, name=name, id_number=cn_id(20 + i))
        for i, name in enumerate(names)
    }

    def lease(who: str, status: LeaseStatus, **fields: object) -> int:
        row = add_lease(session, unit, people[who])  # 2026-03-01 .. 2027-02-28
        row.status = status
        for key, value in fields.items():
            setattr(row, key, value)
        session.flush()
        return row.id

    # last day occupied May 10 (closed May 12): access over May 11 -> purge from May 18
    early = lease(
        "terminated",
        LeaseStatus.TERMINATED,
        terminated_on=date(2026, 5, 10),
        closed_at=datetime(2026, 5, 12, 9, tzinfo=UTC),
    )
    # co-tenant of that lease, but also on an active lease: kept
    session.add(LeaseTenant(lease_id=early, tenant_id=people["co_tenant"].id))
    lease("co_tenant", LeaseStatus.ACTIVE)
    # ended and closed May 27 noon -> purge from June 3 noon, done in the run of June 4
    lease("closed", LeaseStatus.ENDED, closed_at=datetime(2026, 5, 27, 12, tzinfo=UTC))
    # only a draft lease, enrolled May 30 -> purge from June 6
    lease("draft", LeaseStatus.DRAFT)
    # access ended long ago, enrolled again May 31 -> purge from June 7
    lease("back", LeaseStatus.ENDED, closed_at=datetime(2025, 12, 31, tzinfo=UTC))
    enrolled = {
        "draft": datetime(2026, 5, 30, tzinfo=UTC),
        "back": datetime(2026, 5, 31, tzinfo=UTC),
    }
    for name, tenant in people.items():
        at = enrolled.get(name, datetime(2026, 3, 1, tzinfo=UTC))
        rules.enroll(session, KEYS, tenant, VECTOR, consent_at=at, consent_method="app", now=at)
    session.commit()
    return {name: tenant.id for name, tenant in people.items()}


def test_the_purge_job_honours_the_grace_and_runs_once_a_day(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        sessions = make_sessionmaker(engine)
        with sessions() as session:
            ids = _world(session)
        names = {tid: name for name, tid in ids.items()}
        jobs = face_jobs(JobSettings(jobs_face_purge_grace_days=7))
        purged_on: dict[int, list[str]] = {}
        for day in range(8):
            now = JUNE_1 + timedelta(days=day)
            ran = [run_due(sessions, jobs, now=now, holder=h, tz=TZ) for h in ("a", "b", "a")]
            assert ran == [[PURGE_JOB], [], []]  # one instance, once per day
            with sessions() as session:
                events = session.scalars(
                    select(AuditEvent).where(
                        AuditEvent.action == "face.purge", AuditEvent.ts == now
                    )
                ).all()
                purged_on[day] = sorted(names[int(e.target_id)] for e in events)
                left = set(session.scalars(select(FaceEnrollment.tenant_id)))
            gone = {tid for tid in ids.values() if tid not in left}
            assert sorted(names[t] for t in gone) == sorted(
                n for d in purged_on.values() for n in d
            )
        assert purged_on == {
            0: ["terminated"],
            1: [],
            2: [],
            3: ["closed"],
            4: [],
            5: ["draft"],
            6: ["back"],
            7: [],
        }
    finally:
        engine.dispose()


def test_without_grace_an_ended_access_is_purged_the_same_day(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            ids = _world(session)
            purged = rules.purge_ended_access(session, JUNE_1)
            assert sorted(purged) == sorted(
                ids[n] for n in ("terminated", "closed", "draft", "back")
            )
    finally:
        engine.dispose()
