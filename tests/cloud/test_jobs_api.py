"""The jobs API: list the scheduled jobs, see their latest runs, run one now for a property in
the caller's scope; a job already running is refused with a 409, never run twice."""

from __future__ import annotations

import threading
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.db import make_engine, make_sessionmaker
from cloud.jobs.lock import release, try_acquire
from cloud.jobs.scheduler import LOCK_TTL, Job, run_due
from cloud.jobs.trigger import JobBusyError, run_now
from cloud.models import AuditEvent, JobLock, JobRun, Role
from tests.cloud.conftest import Api
from tests.cloud.test_cli_admin import a_property
from tests.cloud.test_meter_ids import org_b_admin

TZ = ZoneInfo("Asia/Shanghai")


async def test_managers_list_the_jobs(api: Api) -> None:
    r = await api.client.get("/api/v1/jobs", headers=api.as_role(Role.MANAGER))
    assert r.status_code == 200, r.text
    jobs = {j["name"]: j for j in r.json()["items"]}
    assert jobs["late-fees"] == {"name": "late-fees", "schedule": "daily at 01:00",
                                 "per_property": True, "running": False,
                                 "running_until": None}  # fmt: skip
    assert jobs["billing-run"]["schedule"] == "monthly on day 1 at 02:00"
    assert (jobs["alarms"]["schedule"], jobs["alarms"]["per_property"]) == ("every 2 min", False)
    assert {"overdue-reminders", "prepaid-deduction", "face-purge"} <= set(jobs)


async def test_a_run_asked_for_is_recorded_shown_and_audited(api: Api) -> None:
    pid = api.world.sites["P1"].property_id
    manager = api.as_role(Role.MANAGER)
    r = await api.client.post(
        "/api/v1/jobs/late-fees/runs", json={"property_id": pid}, headers=manager
    )
    assert r.status_code == 201, r.text
    run = r.json()
    assert (run["name"], run["trigger"], run["property_id"], run["outcome"]) == (
        "late-fees", "manual", pid, "ok",
    )  # fmt: skip
    assert set(run["counts"]) == {"fees"}
    assert run["error"] == ""
    assert run["started_at"] is not None
    assert run["finished_at"] is not None
    shown = await api.client.get("/api/v1/jobs/late-fees", headers=manager)
    assert shown.status_code == 200
    assert [x["id"] for x in shown.json()["runs"]] == [run["id"]]
    with api.sessions() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "job.run")).one()
        assert (event.property_id, event.target_id) == (pid, "late-fees")
        # the lock is given back and the day is not marked done: the scheduled run still runs
        lock = s.get_one(JobLock, "late-fees")
        assert (lock.holder, lock.locked_until, lock.last_key) == ("", None, "")


async def test_a_job_already_running_is_refused_with_409(api: Api) -> None:
    pid = api.world.sites["P1"].property_id
    manager = api.as_role(Role.MANAGER)
    now = api.clock()
    with api.sessions() as s:  # the scheduler on another instance is running it
        assert try_acquire(s, "late-fees", key="2026-03-01", holder="b", now=now, ttl=LOCK_TTL)
    listed = await api.client.get("/api/v1/jobs", headers=manager)
    busy = next(j for j in listed.json()["items"] if j["name"] == "late-fees")
    assert busy["running"] is True
    r = await api.client.post(
        "/api/v1/jobs/late-fees/runs", json={"property_id": pid}, headers=manager
    )
    assert r.status_code == 409, r.text
    assert "late-fees is running now" in r.json()["detail"]
    with api.sessions() as s:
        assert s.scalar(select(func.count()).select_from(JobRun)) == 0
        assert s.get_one(JobLock, "late-fees").holder == "b"  # the refusal left it alone
        release(s, "late-fees", holder="b", key="2026-03-01", now=now)
    again = await api.client.post(
        "/api/v1/jobs/late-fees/runs", json={"property_id": pid}, headers=manager
    )
    assert again.status_code == 201, again.text


async def test_only_jobs_and_properties_in_scope_run(api: Api) -> None:
    manager = api.as_role(Role.MANAGER)  # scoped to P1
    for side in ("P2", "P3"):
        pid = api.world.sites[side].property_id
        r = await api.client.post(
            "/api/v1/jobs/late-fees/runs", json={"property_id": pid}, headers=manager
        )
        assert r.status_code == 404, side
    pid = api.world.sites["P1"].property_id
    everyone = await api.client.post(
        "/api/v1/jobs/alarms/runs", json={"property_id": pid}, headers=manager
    )
    assert everyone.status_code == 422
    assert "every organisation" in everyone.json()["detail"]
    unknown = await api.client.post(
        "/api/v1/jobs/no-such-job/runs", json={"property_id": pid}, headers=manager
    )
    assert unknown.status_code == 404
    for bad in ("late%00fees", "late-fees%ED%A0%80", "x" * 65):
        got = await api.client.get(f"/api/v1/jobs/{bad}", headers=manager)
        assert got.status_code in (404, 422), bad
        assert got.status_code != 500
    desk = api.as_role(Role.FRONT_DESK)
    front_desk = await api.client.post(
        "/api/v1/jobs/late-fees/runs", json={"property_id": pid}, headers=desk
    )
    assert front_desk.status_code == 403
    with api.sessions() as s:
        assert s.scalar(select(func.count()).select_from(JobRun)) == 0


async def test_runs_are_shown_within_scope_and_the_schedulers_without_figures(api: Api) -> None:
    p1, p3 = api.world.sites["P1"].property_id, api.world.sites["P3"].property_id
    r = await api.client.post("/api/v1/jobs/late-fees/runs", json={"property_id": p3},
                              headers=org_b_admin(api))  # fmt: skip
    assert r.status_code == 201, r.text
    jobs = [Job("late-fees", time(1, 0), lambda s, d, n: {"fees": 7})]
    with api.sessions() as s:
        s.query(JobLock).delete()
        s.commit()
    assert run_due(api.sessions, jobs, now=api.clock(), holder="host:1", tz=TZ) == ["late-fees"]
    shown = await api.client.get("/api/v1/jobs/late-fees", headers=api.as_role(Role.MANAGER))
    runs = shown.json()["runs"]
    assert [(x["trigger"], x["property_id"]) for x in runs] == [("schedule", None)]
    assert (runs[0]["started_by"], runs[0]["counts"], runs[0]["error"]) == (
        "scheduler", None, None,
    )  # fmt: skip
    with api.sessions() as s:
        stored = s.scalars(select(JobRun).where(JobRun.trigger == "schedule")).one()
        assert (stored.counts, stored.started_by, stored.outcome) == ({"fees": 7}, "host:1", "ok")
    assert p1 not in {x["property_id"] for x in runs}


@pytest.mark.timeout(30)
def test_a_second_run_while_one_runs_is_refused_not_run_twice(database_url: str) -> None:
    """Two real runs at once: the second is refused while the first holds the lock; the first
    finishes; a failing run is recorded as failed and gives the lock back."""
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    started, go_on = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow(s: Session, pid: int, today: date, now: datetime) -> dict[str, int]:
        calls.append(pid)
        started.set()
        assert go_on.wait(10)
        return {"done": 1}

    def broken(s: Session, pid: int, today: date, now: datetime) -> dict[str, int]:
        raise RuntimeError("the meter table is on fire")

    job = Job("slow", time(1, 0), lambda s, d, n: None, per_property=slow)
    now = datetime(2026, 3, 1, 2, 0, tzinfo=ZoneInfo("UTC"))
    pid = a_property(database_url, "jobs-org", "jobs-p")
    results: list[JobRun] = []
    first = threading.Thread(
        target=lambda: results.append(run_now(sessions, job, pid, by="a", clock=lambda: now, tz=TZ))
    )
    try:
        first.start()
        assert started.wait(10)
        with pytest.raises(JobBusyError, match="slow is running now"):
            run_now(sessions, job, pid, by="b", clock=lambda: now, tz=TZ)
        go_on.set()
        first.join(10)
        assert not first.is_alive()
        assert calls == [pid]
        assert (results[0].outcome, results[0].counts) == ("ok", {"done": 1})
        fails = Job("slow", time(1, 0), lambda s, d, n: None, per_property=broken)
        failed = run_now(sessions, fails, pid, by="a", clock=lambda: now, tz=TZ)
        assert failed.outcome == "failed"
        assert failed.error == "RuntimeError: the meter table is on fire"
        again = run_now(sessions, job, pid, by="a", clock=lambda: now, tz=TZ)
        assert again.outcome == "ok"
    finally:
        go_on.set()
        first.join(10)
        engine.dispose()
