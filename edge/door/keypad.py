"""A keypad entry at a door: a PIN (keypad id + PIN) or an offline code, decided by the access
list like a face (`DoorService`), the lock opened on a grant, and the decision's event written
to the outbox whether the lock answered or not."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from edge.door.lock import Lock, UnlockRequest
from protocols.access.decide import Code, Decision, Pin
from protocols.lock.errors import LockError

if TYPE_CHECKING:
    from edge.access.service import AccessService

log = logging.getLogger(__name__)


async def keypad_entry(
    access: AccessService, lock: Lock, door: str, entered: Pin | Code, *, hold_s: float
) -> Decision:
    """Decide (Argon2 in a worker thread), unlock on a grant, record; the decision."""
    decision = await asyncio.to_thread(access.decide, door, entered)
    extra: dict[str, object] = {}
    who = decision.subject or decision.right  # an offline code names no one: its id stands in
    if decision.granted and who is not None and decision.at is not None:
        try:
            await lock.unlock(UnlockRequest(door, who, hold_s, decision.at))
        except LockError as exc:  # still recorded; the keypad keeps taking entries
            extra["lock_error"] = str(exc)
            log.warning("[%s] lock did not open: %s", door, exc)
    await asyncio.to_thread(access.record, decision, **extra)
    return decision
