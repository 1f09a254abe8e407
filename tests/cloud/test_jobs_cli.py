"""`anju cloud jobs` against a real migrated database: list, run (for a property or all of
it), show with counts; a job already running is refused and left to its holder."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from cloud.db import make_engine, make_sessionmaker
from cloud.jobs.lock import try_acquire
from cloud.models import AuditEvent, JobLock, JobRun
from runtime.clock import utc_now
from tests.cloud.test_cli_admin import a_property, env, run

__all__ = ["env"]  # the fixture, shared


def test_list_run_and_show(env: dict[str, str]) -> None:
    url = env["ANJU_DATABASE_URL"]
    pid = a_property(url, "jobs-org", "jobs-p")
    listed = run(env, "jobs", "list")
    assert listed.exit_code == 0, listed.output
    fees = next(line for line in listed.output.splitlines() if line.startswith("late-fees "))
    assert fees.split() == ["late-fees", "daily", "at", "01:00", "per", "property", "never", "run"]
    one = run(env, "jobs", "run", "late-fees", "--property", str(pid))
    assert one.exit_code == 0, one.output
    assert "manual" in one.output
    assert f"property {pid}" in one.output
    assert "fees=0" in one.output
    everything = run(env, "jobs", "run", "late-fees")
    assert everything.exit_code == 0, everything.output
    assert "every property" in everything.output
    shown = run(env, "jobs", "show", "late-fees")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == "late-fees: daily at 01:00 (Asia/Shanghai)"
    assert ["every property" in lines[1], f"property {pid}" in lines[2]] == [True, True]
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            assert [r.outcome for r in s.scalars(select(JobRun))] == ["ok", "ok"]
            audited = s.scalars(select(AuditEvent).where(AuditEvent.action == "job.run")).all()
            assert [(a.username, a.property_id) for a in audited] == [("cli", pid), ("cli", None)]
    finally:
        engine.dispose()


def test_a_running_job_and_wrong_names_are_refused(env: dict[str, str]) -> None:
    url = env["ANJU_DATABASE_URL"]
    pid = a_property(url, "jobs-org", "jobs-p")
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            now = utc_now()
            assert try_acquire(s, "late-fees", key="x", holder="other", now=now,
                               ttl=timedelta(minutes=30))  # fmt: skip
        busy = run(env, "jobs", "run", "late-fees", "--property", str(pid))
        assert busy.exit_code == 1
        assert "late-fees is running now" in busy.output
        with make_sessionmaker(engine)() as s:
            assert s.get_one(JobLock, "late-fees").holder == "other"
            assert s.scalars(select(JobRun)).all() == []
    finally:
        engine.dispose()
    everyone = run(env, "jobs", "run", "alarms", "--property", str(pid))
    assert (everyone.exit_code, "every organisation" in everyone.output) == (1, True)
    assert run(env, "jobs", "run", "no-such-job").exit_code == 1
    assert run(env, "jobs", "show", "no-such-job").exit_code == 1
    assert run(env, "jobs", "run", "late-fees", "--property", "999999").exit_code == 1
