"""Run jobs at their local time of day, once per day (or month), on exactly one instance.

Each tick asks which jobs are due; for each, the instance that takes the database lock for the
job's key (the day or month) runs it in its own session and records the key as done. A job that
fails releases the lock without the key, so the next tick retries it. A run whose process died
is found at the start of each tick (cloud/jobs/history.py `recover`) and its job runs again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from cloud.jobs.history import Counts, counts_of, describe, finish_run, recover, start_run
from cloud.jobs.lock import release, try_acquire

log = logging.getLogger(__name__)

LOCK_TTL = timedelta(minutes=30)  # a holder that died frees the job after this
TICK_S = 60.0


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    at: time  # local time of day
    # (session, local today, now) -> what it did, as counts ({"fees": 3}) or None
    run: Callable[[Session, date, datetime], object]
    day_of_month: int | None = None  # None: daily
    every_min: int | None = None  # repeating: once per slot of this many minutes, from `at`
    # The same work for one property (session, property id, local today, now), for a person
    # who asks for it now; None: the job works on every organisation at once.
    per_property: Callable[[Session, int, date, datetime], Counts] | None = None

    @property
    def schedule(self) -> str:
        """When it runs, in words (local time)."""
        if self.every_min:
            return f"every {self.every_min} min"
        if self.day_of_month:
            return f"monthly on day {self.day_of_month} at {self.at:%H:%M}"
        return f"daily at {self.at:%H:%M}"

    def key(self, today: date) -> str:
        return f"{today:%Y-%m}" if self.day_of_month else today.isoformat()

    def key_at(self, local: datetime) -> str:
        if not self.every_min:
            return self.key(local.date())
        slot = (local.hour * 60 + local.minute) // self.every_min * self.every_min
        return f"{local.date().isoformat()}T{slot // 60:02d}:{slot % 60:02d}"

    def due(self, local: datetime) -> bool:
        if self.day_of_month is not None and local.day < self.day_of_month:
            return False
        return local.time() >= self.at


def run_due(
    sessions: sessionmaker[Any],
    jobs: Sequence[Job],
    *,
    now: datetime,
    holder: str,
    tz: ZoneInfo,
    clock: Callable[[], datetime] | None = None,
) -> list[str]:
    """Run every job that is due and not yet done; returns the names this instance ran. Each
    run is recorded (cloud/jobs/history.py), finished at `clock()` (default: `now`)."""
    local = now.astimezone(tz)
    ran = []
    with sessions() as session:
        recover(session, now)  # a run whose process died frees its job to run again
    for job in jobs:
        if not job.due(local):
            continue
        key = job.key_at(local)
        with sessions() as session:
            if not try_acquire(session, job.name, key=key, holder=holder, now=now, ttl=LOCK_TTL):
                continue
        done: str | None = None
        counts: Counts = {}
        error = ""
        try:
            with sessions() as session:
                run_id = start_run(session, job.name, trigger="schedule", by=holder, key=key,
                                   now=now, holder=holder, lease_until=now + LOCK_TTL)  # fmt: skip
            try:
                with sessions() as session:
                    counts = counts_of(job.run(session, local.date(), now))
                    session.commit()
                done = key
                ran.append(job.name)
                log.info("job %s done for %s", job.name, key)
            except Exception as exc:
                log.exception("job %s failed for %s; retrying next tick", job.name, key)
                error = describe(exc)
            with sessions() as session:
                finished = clock() if clock is not None else now
                finish_run(session, run_id, now=finished, counts=counts, error=error)
        finally:
            with sessions() as session:
                release(session, job.name, holder=holder, key=done, now=now)
    return ran


async def run_forever(
    sessions: sessionmaker[Any],
    jobs: Sequence[Job],
    *,
    clock: Callable[[], datetime],
    holder: str,
    tz: ZoneInfo,
    tick_s: float = TICK_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Tick until cancelled. A tick that fails outside a job (the database unreachable for
    the lock) is logged and the next tick tries again: the scheduler itself never dies."""
    while True:
        tick = asyncio.ensure_future(
            asyncio.to_thread(
                run_due, sessions, jobs, now=clock(), holder=holder, tz=tz, clock=clock
            )
        )
        try:
            await asyncio.shield(tick)
        except asyncio.CancelledError:
            # A thread cannot be interrupted: let the tick finish (and close its sessions)
            # before the caller disposes of the engine.
            await asyncio.gather(tick, return_exceptions=True)
            raise
        except Exception:
            log.exception("job tick failed; trying again in %.0f s", tick_s)
        await sleep(tick_s)
