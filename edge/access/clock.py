"""The gateway's clocks as `protocols.access.clock` reads them: the wall clock, the monotonic
clock of this boot (CLOCK_BOOTTIME: it counts a suspend too), the boot's id, and whether the
kernel's clock is disciplined by NTP right now."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from protocols.access.clock import Instant, TrustedClock

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# adjtimex(2) returns TIME_ERROR while the kernel's clock is not synchronised (STA_UNSYNC):
# no NTP daemon, NTP lost long enough, or the time set by hand (`date -s` sets STA_UNSYNC).
TIME_ERROR = 5
_TIMEX_BYTES = 512  # struct timex is 208 bytes on 64-bit Linux; modes = 0 only reads

_FALLBACK_BOOT = f"process-{uuid.uuid4()}"


def boot_id(path: Path = BOOT_ID) -> str:
    """This boot's id; without /proc, one per process (a restart then counts as a reboot,
    which is the careful side: the clock starts again from its high water)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return _FALLBACK_BOOT
    return text if 0 < len(text) <= 64 else _FALLBACK_BOOT


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, found once: `find_library` runs `ldconfig -p` in a subprocess, and the
    clock is read at every door decision and every minute."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def kernel_ntp_synced() -> bool:
    libc = _libc()
    if libc is None:
        return False
    try:
        timex = ctypes.create_string_buffer(_TIMEX_BYTES)  # zeroed: modes = 0
        state = libc.adjtimex(timex)
    except (OSError, AttributeError):
        return False
    return isinstance(state, int) and 0 <= state < TIME_ERROR


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class GatewayClock:
    """Readings of the clocks, and the trusted clock re-anchored while NTP holds."""

    def __init__(
        self,
        now: Callable[[], datetime],
        *,
        monotonic: Callable[[], float] = boottime,
        boot: Callable[[], str] = boot_id,
        ntp_synced: Callable[[], bool] = kernel_ntp_synced,
    ) -> None:
        self._now = now
        self._monotonic = monotonic
        self._boot = boot()
        self._ntp_synced = ntp_synced

    def instant(self, trusted: TrustedClock) -> Instant:
        """A reading; when NTP holds, `trusted` is anchored on it first."""
        at = Instant(self._now(), self._monotonic(), self._boot)
        if self._ntp_synced():
            trusted.synced(at.wall, at)
        return at

    def wall(self) -> datetime:
        return self._now()
