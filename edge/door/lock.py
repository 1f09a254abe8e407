"""The door's lock seam: the BLE driver (edge/door/ble/) and a simulator that records requests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UnlockRequest:
    door_id: str
    person_id: str
    hold_s: float
    ts: datetime


class Lock(Protocol):
    async def unlock(self, request: UnlockRequest) -> None:
        """Returns once the lock acknowledged; a LockError when it did not."""
        ...


class EventSink(Protocol):
    def append(self, kind: str, payloads: list[dict[str, object]]) -> list[int]: ...


@runtime_checkable
class LockService(Protocol):
    """A lock that also runs as a gateway service (keeps its link, reports its events)."""

    async def run(self, events: EventSink, on_stored: Callable[[], None]) -> None: ...


class SimulatedLock:
    """Records (and logs) every unlock request instead of driving a lock."""

    def __init__(self, name: str = "lock") -> None:
        self.name = name
        self.requests: list[UnlockRequest] = []

    async def unlock(self, request: UnlockRequest) -> None:
        self.requests.append(request)
        log.info(
            "[%s] simulated lock: unlock for %s, held %.1f s",
            self.name,
            request.person_id,
            request.hold_s,
        )
