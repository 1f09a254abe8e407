"""Run jobs at their local time of day, once per day (or month), on exactly one instance.

Each tick asks which jobs are due; for each, the instance that takes the database lock for the
job's key (the day or month) runs it in its own session and records the key as done. A job that
fails releases the lock without the key, so the next tick retries it.
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

from cloud.jobs.lock import release, try_acquire

log = logging.getLogger(__name__)

LOCK_TTL = timedelta(minutes=30)  # a holder that died frees the job after this
TICK_S = 60.0


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    at: time  # local time of day
    run: Callable[[Session, date, datetime], object]  # (session, local today, now)
    day_of_month: int | None = None  # None: daily
    every_min: int | None = None  # repeating: once per slot of this many minutes, from `at`

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
) -> list[str]:
    """Run every job that is due and not yet done; returns the names this instance ran."""
    local = now.astimezone(tz)
    ran = []
    for job in jobs:
        if not job.due(local):
            continue
        key = job.key_at(local)
        with sessions() as session:
            if not try_acquire(session, job.name, key=key, holder=holder, now=now, ttl=LOCK_TTL):
                continue
        done: str | None = None
        try:
            with sessions() as session:
                job.run(session, local.date(), now)
                session.commit()
            done = key
            ran.append(job.name)
            log.info("job %s done for %s", job.name, key)
        except Exception:
            log.exception("job %s failed for %s; retrying next tick", job.name, key)
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
            asyncio.to_thread(run_due, sessions, jobs, now=clock(), holder=holder, tz=tz)
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
