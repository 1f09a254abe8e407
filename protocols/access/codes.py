"""Offline one-time codes, and the keypad's wrong-entry lockout.

A manager asks the cloud for a code for one door and a window; the cloud derives it from the
door's secret, which the gateway also holds (in its access list), so the gateway verifies the
code with no network, in the style of the algorithmic PINs of commercial locks:

    code = int(HMAC-SHA256(secret, "anju-code-v1\\n" door "\\n" start end counter)[:8]) mod 10^N

with `start`/`end` as big-endian signed 64-bit Unix seconds and `counter` as a big-endian
32-bit integer. Windows lie on a grid so the gateway can enumerate them: `start` is a whole UTC
hour, the length one of `DURATIONS_H` hours, and `counter` (0..COUNTERS-1) tells apart codes
for the same window. At trusted time t the gateway computes every code whose window holds t
(`CANDIDATES` of them) and compares; each accepted code is remembered until its window ends, so
it opens once. docs/access.md has the entropy and brute-force figures.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DOMAIN = b"anju-code-v1\n"
STEP = timedelta(hours=1)
DURATIONS_H = (1, 2, 4, 8, 12, 24, 48, 72, 168)
COUNTERS = 4
# Codes valid at any instant: every window of the grid that holds it, times the counters.
CANDIDATES = sum(DURATIONS_H) * COUNTERS

# Keypad lockout: FREE_TRIES wrong entries, then each further one locks the keypad for
# LOCK_BASE doubled per extra failure, up to LOCK_CAP. The count is forgotten after a quiet
# FORGET_AFTER; a right entry does not reset it (else a tenant could interleave their own PIN
# with guesses).
FREE_TRIES = 5
LOCK_BASE = timedelta(minutes=1)
LOCK_CAP = timedelta(hours=1)
FORGET_AFTER = timedelta(hours=24)


class CodeError(ValueError):
    """A window off the grid, a bad counter or digit count."""


@dataclass(frozen=True, slots=True)
class CodeWindow:
    door: str
    start: datetime
    end: datetime
    counter: int

    @property
    def id(self) -> str:
        """How revocations and the used-code memory name this code."""
        hours = (self.end - self.start) // STEP
        return f"{self.door}@{self.start:%Y%m%dT%H}Z+{hours}h#{self.counter}"


def _epoch(value: datetime) -> int:
    return int(value.astimezone(UTC).timestamp())


def derive(secret: bytes, window: CodeWindow, digits: int) -> str:
    message = (
        DOMAIN
        + window.door.encode()
        + b"\n"
        + struct.pack(">qqI", _epoch(window.start), _epoch(window.end), window.counter)
    )
    mac = hmac.new(secret, message, hashlib.sha256).digest()
    return str(int.from_bytes(mac[:8], "big") % 10**digits).zfill(digits)


def check_window(window: CodeWindow) -> None:
    start = window.start.astimezone(UTC)
    if start.minute or start.second or start.microsecond:
        raise CodeError("a code's window starts on a whole UTC hour")
    length = window.end - window.start
    if length % STEP or length // STEP not in DURATIONS_H:
        raise CodeError(f"a code's window lasts one of {DURATIONS_H} hours")
    if not 0 <= window.counter < COUNTERS:
        raise CodeError(f"a code's counter is 0..{COUNTERS - 1}")


def issue(secret: bytes, window: CodeWindow, digits: int) -> str:
    """The code a manager hands out for `window` (the cloud's side)."""
    check_window(window)
    return derive(secret, window, digits)


def windows_at(door: str, t: datetime) -> Iterator[CodeWindow]:
    """Every grid window of `door` that holds `t` (`CANDIDATES` of them)."""
    t = t.astimezone(UTC)
    hour = t.replace(minute=0, second=0, microsecond=0)
    for hours in DURATIONS_H:
        for back in range(hours):
            start = hour - back * STEP
            end = start + hours * STEP
            for counter in range(COUNTERS):
                yield CodeWindow(door, start, end, counter)


def match(secret: bytes, door: str, digits: int, code: str, t: datetime) -> CodeWindow | None:
    """The window whose code `code` is, among those that hold `t`; None if none."""
    if len(code) != digits or not code.isascii() or not code.isdigit():
        return None
    found = None
    for window in windows_at(door, t):
        # Every candidate is computed: the time taken does not tell how close a guess came.
        if hmac.compare_digest(derive(secret, window, digits), code) and found is None:
            found = window
    return found


@dataclass(slots=True)
class Keypad:
    """Wrong entries at one door's keypad (PINs and codes alike)."""

    failures: int = 0
    last_failure: datetime | None = None

    def locked_until(self) -> datetime | None:
        if self.failures < FREE_TRIES or self.last_failure is None:
            return None
        extra = min(self.failures - FREE_TRIES, 16)
        lock: timedelta = min(LOCK_BASE * 2**extra, LOCK_CAP)
        return self.last_failure + lock

    def locked(self, t: datetime) -> bool:
        until = self.locked_until()
        return until is not None and t < until

    def failed(self, t: datetime) -> None:
        if self.last_failure is not None and t - self.last_failure >= FORGET_AFTER:
            self.failures = 0
        self.failures = min(self.failures + 1, 1_000_000)
        self.last_failure = t
