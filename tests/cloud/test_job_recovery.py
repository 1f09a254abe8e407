"""A job run whose process dies mid-job (SIGKILL: nothing of it runs again) is found by the
next start, marked abandoned with the reason, and its job runs again; a run elsewhere whose
lease ran out is abandoned when runs are listed; a live run is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import make_engine, make_sessionmaker
from cloud.jobs.history import latest_runs, start_run
from cloud.jobs.lock import try_hold
from cloud.jobs.owner import gone, this_process
from cloud.jobs.scheduler import LOCK_TTL, Job, run_due
from cloud.jobs.trigger import running
from cloud.models import JobLock, JobRun

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")

CHILD = """
import sys, threading
from datetime import datetime, time
from zoneinfo import ZoneInfo

from cloud.db import make_engine, make_sessionmaker
from cloud.jobs.scheduler import Job, run_due


def hang(session, today, now):
    print("started", flush=True)
    threading.Event().wait()  # mid-job until killed


sessions = make_sessionmaker(make_engine(sys.argv[1]))
run_due(sessions, [Job("hangs", time(0, 0), hang)], now=datetime.fromisoformat(sys.argv[2]),
        holder="doomed", tz=ZoneInfo("UTC"))
"""


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def runs(sessions: sessionmaker[Session]) -> list[JobRun]:
    with sessions() as s:
        return list(s.scalars(select(JobRun).order_by(JobRun.id)))


def test_a_run_killed_mid_job_is_abandoned_and_the_job_runs_again(
    database_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    script = tmp_path / "job.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, str(script), database_url, NOW.isoformat()],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "started"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    [killed] = runs(sessions)
    assert (killed.outcome, killed.finished_at) == ("running", None)
    assert killed.owner.split(":")[1] == str(child.pid)
    with sessions() as s:
        assert s.scalar(select(JobLock.holder).where(JobLock.name == "hangs")) == "doomed"

    done: list[date] = []
    job = Job("hangs", time(0, 0), lambda s, today, now: done.append(today))
    later = NOW + timedelta(minutes=1)  # well inside the dead run's lease
    assert run_due(sessions, [job], now=later, holder="next", tz=UTC_ZONE) == ["hangs"]
    assert done == [date(2026, 3, 1)]
    old, new = runs(sessions)
    assert old.id == killed.id
    assert old.outcome == "abandoned"
    assert f"its process {killed.owner} ended before it finished" in old.error
    assert old.finished_at is not None
    assert (new.outcome, new.owner) == ("ok", this_process())
    with sessions() as s:
        lock = s.get_one(JobLock, "hangs")
        assert (lock.holder, lock.last_key) == ("", "2026-03-01")


def test_a_run_on_another_host_is_abandoned_when_its_lease_ends(
    sessions: sessionmaker[Session],
) -> None:
    until = NOW + LOCK_TTL
    with sessions() as s:
        assert try_hold(s, "far", holder="other-host:7", now=NOW, ttl=LOCK_TTL)
        far = start_run(s, "far", trigger="manual", by="ops", key="", now=NOW,
                        holder="other-host:7", lease_until=until)  # fmt: skip
        owner = "another-machine:4242:1700000000.00"
        s.execute(update(JobRun).where(JobRun.id == far).values(owner=owner))
        s.commit()
    with sessions() as s:  # within the lease: nobody can tell it died
        assert "far" in running(s, until - timedelta(seconds=1))
        [run] = latest_runs(s, "far", limit=5, now=until - timedelta(seconds=1))
        assert run.outcome == "running"
    with sessions() as s:
        after = until + timedelta(seconds=1)
        [run] = latest_runs(s, "far", limit=5, now=after)
        assert run.outcome == "abandoned"
        assert "its lease ran out at" in run.error
        assert running(s, after) == {}
        assert s.get_one(JobLock, "far").holder == ""


def test_a_live_run_of_this_process_is_not_abandoned(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        start_run(s, "live", trigger="schedule", by="me", key="d", now=NOW, holder="me",
                  lease_until=NOW + LOCK_TTL)  # fmt: skip
    with sessions() as s:
        [run] = latest_runs(s, "live", limit=5, now=NOW + timedelta(minutes=5))
        assert (run.outcome, run.error) == ("running", "")


def test_an_owner_in_another_pid_namespace_of_this_host_is_not_taken_for_gone() -> None:
    """Containers sharing the host's name (its network) number their processes apart: a pid
    that does not exist here may live there, so only its lease can end its run."""
    me = this_process()
    host, _, start = me.split(":")
    assert (len(me) <= 100, gone(me)) == (True, False)  # the owner column's width; alive
    free = max(psutil.pids()) + 1000  # no process here has it
    assert gone(f"{host}:{free}:{start}")
    if "#" in host:  # Linux: the pid namespace is part of the host
        name, _, namespace = host.partition("#")
        assert not gone(f"{name}#{int(namespace) + 1}:{free}:{start}")
        assert not gone(f"{name}:{free}:{start}")  # no namespace named: not known to be here
    assert not gone(f"elsewhere:{free}:{start}")
    assert not gone(f"{host}:not-a-pid:{start}")


OWNER_IN_NAMESPACE = """
import sys
from cloud.jobs.owner import this_process
print(this_process(), flush=True)
sys.stdin.readline()  # alive until the test is done asking
"""


def in_new_pid_namespace() -> list[str] | None:
    """A command prefix that runs a process in a pid namespace of its own, or None where the
    system allows none (no `unshare`, or unprivileged user namespaces turned off)."""
    prefix = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"]
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if probe.returncode == 0 else None


def test_a_live_owner_in_a_container_beside_this_one_is_not_gone(tmp_path: Path) -> None:
    """A process in another pid namespace of this host (a container on the host's network has
    its name) is pid 1 or so there; here that pid is another process, or none."""
    prefix = in_new_pid_namespace()
    if prefix is None:
        pytest.skip("no unprivileged pid namespaces here")
    script = tmp_path / "owner.py"
    script.write_text(OWNER_IN_NAMESPACE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [*prefix, sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    ) as child:
        assert child.stdout is not None
        assert child.stdin is not None
        try:
            owner = child.stdout.readline().strip()
            assert owner.split(":")[1] == "1"  # the namespace's first process
            assert not gone(owner)
        finally:
            child.stdin.close()
            child.wait(timeout=30)
    assert child.returncode == 0
