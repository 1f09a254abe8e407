"""The gateway's trusted time: what its doors decide by when the wall clock cannot be trusted.

A gateway on a Pi has no battery clock: after a power cut its wall clock starts from the last
saved time (fake-hwclock) or from 1970, and when NTP is lost nothing corrects it. A clock that
runs backwards would reopen expired rights; one that jumps forward would refuse everyone whose
right ends before the jump. So decisions never read the wall clock directly:

- An *anchor* pairs a wall time with a monotonic reading of one boot. Trusted time is the
  anchor's wall time plus the monotonic time elapsed since; the wall clock is ignored while the
  anchor holds, whatever it jumps to.
- An NTP sync re-anchors on the synced wall time.
- Trusted time never goes backwards: it is at least the *high water*, the latest trusted time
  ever given out, which the gateway persists, and at least the `issued_at` of the newest access
  list applied (signed cloud time).
- After a reboot without time the monotonic clock restarts, so the old anchor means nothing. The
  first reading anchors on the wall clock if it lies between the high water and
  `MAX_BOOT_LEAP` after it (a battery clock, or a short outage), else on the high water. Time
  lost while the gateway was off is then not counted until NTP returns: a right that ended
  during the power cut stays open for at most that long. No wall clock, however wrong, can make
  trusted time earlier than a time the gateway already used, or later than `MAX_BOOT_LEAP`
  beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_BOOT_LEAP = timedelta(days=7)
# A monotonic reading beyond this is nonsense (a Pi does not run 30 years without a reboot).
MAX_MONOTONIC_S = 30 * 365 * 86_400.0
MAX_BOOT_ID_CHARS = 64


@dataclass(frozen=True, slots=True)
class Instant:
    """One reading of the gateway's clocks: the wall clock (untrusted), the monotonic clock of
    this boot in seconds, and the boot's id (Linux: /proc/sys/kernel/random/boot_id)."""

    wall: datetime
    monotonic: float
    boot: str

    def __post_init__(self) -> None:
        if self.wall.tzinfo is None or self.wall.utcoffset() is None:
            raise ValueError("an instant's wall time has no timezone")
        if not 0.0 <= self.monotonic <= MAX_MONOTONIC_S:
            raise ValueError(f"monotonic reading {self.monotonic!r} is out of range")
        if not 0 < len(self.boot) <= MAX_BOOT_ID_CHARS:
            raise ValueError("a boot id has 1-64 characters")


@dataclass(frozen=True, slots=True)
class Anchor:
    wall: datetime
    monotonic: float
    boot: str
    synced: bool  # from NTP; False: from the boot rule (see the module)


class TrustedClock:
    """Mutable, I/O-free: the gateway feeds it instants and syncs, and saves `to_dict()`."""

    def __init__(self, high_water: datetime | None = None, anchor: Anchor | None = None) -> None:
        self.high_water = high_water
        self.anchor = anchor

    def synced(self, ntp_wall: datetime, at: Instant) -> None:
        """NTP says the wall clock reads true time at `at` (`ntp_wall`)."""
        self.anchor = Anchor(ntp_wall.astimezone(UTC), at.monotonic, at.boot, synced=True)

    def observe(self, trusted: datetime) -> None:
        """A time known to have passed (an applied list's signed `issued_at`)."""
        trusted = trusted.astimezone(UTC)
        if self.high_water is None or trusted > self.high_water:
            self.high_water = trusted

    def now(self, at: Instant) -> datetime | None:
        """Trusted time at `at`; None when the gateway has never known the time."""
        anchor = self.anchor
        if anchor is None or anchor.boot != at.boot or at.monotonic < anchor.monotonic:
            anchor = self._boot_anchor(at)
            if anchor is None:
                return None
            self.anchor = anchor
        t = anchor.wall + timedelta(seconds=at.monotonic - anchor.monotonic)
        if self.high_water is not None and t < self.high_water:
            t = self.high_water
        self.high_water = t
        return t

    def _boot_anchor(self, at: Instant) -> Anchor | None:
        base = self.high_water
        if base is None:
            return None
        wall = at.wall.astimezone(UTC)
        start = wall if base <= wall <= base + MAX_BOOT_LEAP else base
        return Anchor(start, at.monotonic, at.boot, synced=False)

    @property
    def synced_now(self) -> bool:
        return self.anchor is not None and self.anchor.synced

    def to_dict(self) -> dict[str, Any]:
        a = self.anchor
        return {
            "high_water": None if self.high_water is None else self.high_water.isoformat(),
            "anchor": None
            if a is None
            else {
                "wall": a.wall.isoformat(),
                "monotonic": a.monotonic,
                "boot": a.boot,
                "synced": a.synced,
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrustedClock:
        """Inverse of `to_dict`; ValueError (or TypeError/KeyError) on anything else."""
        high = data.get("high_water")
        raw = data.get("anchor")
        anchor = None
        if raw is not None:
            at = Instant(
                _aware(raw["wall"]), float(raw["monotonic"]), str(raw["boot"])
            )  # checks the bounds
            anchor = Anchor(at.wall, at.monotonic, at.boot, synced=bool(raw["synced"]))
        return cls(None if high is None else _aware(high), anchor)


def _aware(text: object) -> datetime:
    if not isinstance(text, str) or len(text) > 40:
        raise ValueError("a time is not an ISO string")
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("a stored time has no timezone")
    return value.astimezone(UTC)
