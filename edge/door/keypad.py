"""A door's keypad: PINs and offline codes typed at the door, decided by the access list.

The keypad is a serial device behind the `KeypadPort` seam (`SerialKeypad`: a tty opened raw,
read without blocking the loop); `anju.sim.keypad` is a keypad on a pseudo-terminal that speaks
the same bytes. `KeypadService` reads entries (`protocols.access.keypad`), has the gateway's
access service decide each (the same rule as faces: windows, uses, revocations, the keypad's
wrong-entry lockout, docs/access.md), unlocks on a grant, records the decision on the outbox
and answers the keypad. Entries are decided one at a time, in the order typed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import termios
import tty
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from edge.door.config import KeypadSettings
from edge.door.lock import Lock, UnlockRequest
from protocols.access.decide import Code, Decision, Pin, Reason
from protocols.access.keypad import (
    ANSWER_OPEN,
    ANSWER_REFUSED,
    ANSWER_WAIT,
    Entry,
    EntryReader,
)
from protocols.lock.errors import LockError
from runtime.backoff import Backoff
from runtime.fdio import read_when_ready

if TYPE_CHECKING:
    from edge.access.service import AccessService

log = logging.getLogger(__name__)

READ_CHUNK = 256
BAUDS = {1200: termios.B1200, 2400: termios.B2400, 4800: termios.B4800, 9600: termios.B9600,
         19200: termios.B19200, 38400: termios.B38400, 57600: termios.B57600,
         115200: termios.B115200}  # fmt: skip


class KeypadPort(Protocol):
    async def read(self) -> bytes:
        """What the keypad sent next; b"" once the device is gone."""
        ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class SerialKeypad:
    """A keypad on a serial device (USB adapter, UART or a pseudo-terminal), 8N1, raw."""

    def __init__(self, path: Path, baud: int = 9600) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            tty.setraw(self._fd, termios.TCSANOW)  # keys already typed are kept, not flushed
            attrs = termios.tcgetattr(self._fd)
            attrs[4] = attrs[5] = BAUDS[baud]
            termios.tcsetattr(self._fd, termios.TCSANOW, attrs)
        except (termios.error, KeyError):
            os.close(self._fd)
            raise

    async def read(self) -> bytes:
        try:
            return await read_when_ready(self._fd, READ_CHUNK)
        except OSError:  # EIO: the device (or the pseudo-terminal's other end) is gone
            return b""

    def write(self, data: bytes) -> None:
        # An answer the keypad misses costs it a beep, never the decision: not retried.
        with contextlib.suppress(OSError):
            os.write(self._fd, data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def open_serial(settings: KeypadSettings) -> KeypadPort:
    return SerialKeypad(settings.port, settings.baud)


@dataclass(eq=False)
class KeypadService:
    """One door's keypad; `open_port` and `sleep` are the seams tests drive."""

    door: str
    settings: KeypadSettings
    access: AccessService
    lock: Lock
    now: Callable[[], datetime]
    open_port: Callable[[KeypadSettings], KeypadPort] = open_serial
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    reader: EntryReader = field(default_factory=EntryReader)
    entries: int = 0  # entries decided

    async def run(self) -> None:
        """Until cancelled: a keypad that cannot be opened or goes away is reopened after a
        capped, jittered pause (logged once per outage)."""
        backoff = Backoff(base=1.0, cap=30.0)
        failing = False
        while True:
            try:
                port = self.open_port(self.settings)
            except OSError as exc:
                if not failing:
                    log.warning("[%s] keypad %s: %s", self.door, self.settings.port, exc)
                failing = True
                await self._pause(backoff)
                continue
            if failing:
                log.info("[%s] keypad %s recovered", self.door, self.settings.port)
            failing = False
            backoff.reset()
            try:
                await self.serve(port)
            finally:
                port.close()
            log.warning("[%s] keypad %s went away", self.door, self.settings.port)
            failing = True
            await self._pause(backoff)

    async def _pause(self, backoff: Backoff) -> None:
        await self.sleep(backoff.next_delay())

    async def serve(self, port: KeypadPort) -> None:
        """Decide every entry the port brings until it ends."""
        self.reader = EntryReader()  # a half-typed entry does not survive a reconnect
        while data := await port.read():
            for entry in self.reader.feed(data):
                port.write(await self.enter(entry))

    async def enter(self, entry: Entry | None) -> bytes:
        """Decide one entry (None: a spoiled one, refused unread); the keypad's answer."""
        if entry is None:
            return ANSWER_REFUSED
        self.entries += 1
        hold_s = self.settings.unlock_hold_s
        decision = await keypad_entry(self.access, self.lock, self.door, entry, hold_s=hold_s)
        if decision.granted:
            return ANSWER_OPEN
        return ANSWER_WAIT if decision.reason is Reason.LOCKED_OUT else ANSWER_REFUSED


async def keypad_entry(
    access: AccessService, lock: Lock, door: str, entered: Pin | Code, *, hold_s: float
) -> Decision:
    """Decide (Argon2 in a worker thread), unlock on a grant, record; the decision. The event
    is written whether the lock answered or not (then with `lock_error`)."""
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
