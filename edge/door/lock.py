"""The door's lock seam. The BLE lock driver comes later; the simulator records requests."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UnlockRequest:
    door_id: str
    person_id: str
    hold_s: float
    ts: datetime


class Lock(Protocol):
    async def unlock(self, request: UnlockRequest) -> None: ...


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
