"""Per-meter status: ok / degraded / offline, with each transition logged once.

A meter that keeps failing is retried on a capped, jittered backoff instead of every cycle, so a
dead meter on a serial line costs one timeout now and then, not one per poll.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from protocols.modbus.errors import MeterError
from runtime.backoff import Backoff

log = logging.getLogger(__name__)


class MeterStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"  # answering, but some reads failed or needed retries
    OFFLINE = "offline"  # several polls in a row got nothing


class MeterHealth:
    def __init__(
        self, label: str, *, offline_after: int = 3, backoff: Backoff | None = None
    ) -> None:
        self.label = label
        self.status = MeterStatus.OK
        self.failures = 0  # consecutive polls with no value at all
        self.last_error: MeterError | None = None
        self._offline_after = offline_after
        self._backoff = backoff or Backoff(base=1.0, cap=300.0)
        self._next_try = 0.0

    def due(self, now: float) -> bool:
        return now >= self._next_try

    def record(self, now: float, *, ok_reads: int, errors: list[MeterError], retried: int) -> None:
        """Fold one poll's outcome into the status."""
        if errors:
            self.last_error = errors[-1]
        if ok_reads == 0 and errors:
            self.failures += 1
            status = MeterStatus.DEGRADED
            if self.failures >= self._offline_after:
                status = MeterStatus.OFFLINE
                self._next_try = now + self._backoff.next_delay()
        else:
            self.failures = 0
            self._backoff.reset()
            self._next_try = 0.0
            status = MeterStatus.DEGRADED if errors or retried else MeterStatus.OK
        self._move(status)

    def _move(self, status: MeterStatus) -> None:
        if status is self.status:
            return
        before, self.status = self.status, status
        if status is MeterStatus.OK:
            log.info("[%s] recovered (was %s)", self.label, before)
        else:
            log.warning("[%s] %s -> %s: %s", self.label, before, status, self.last_error)
