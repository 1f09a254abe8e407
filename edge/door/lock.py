"""The door's lock seam. The BLE lock driver comes later; the simulator records requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class UnlockRequest:
    door_id: str
    person_id: str
    hold_s: float
    ts: datetime


class Lock(Protocol):
    async def unlock(self, request: UnlockRequest) -> None: ...


class SimulatedLock:
    def __init__(self) -> None:
        self.requests: list[UnlockRequest] = []

    async def unlock(self, request: UnlockRequest) -> None:
        self.requests.append(request)
