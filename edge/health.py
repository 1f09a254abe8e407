"""The gateway's health sample: the box (CPU, memory, disk, temperature, uptime), the software
version, the outbox, and each bus, meter and door, read from Linux's /proc and /sys.

Readers take their root folder so tests (and a box without a sensor) use the same code: a file
that is missing gives None or 0, never an error, because a health report must not stop the
gateway. CPU use is the share of non-idle time since the previous sample.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from edge.meters.poller import BusPoller
from edge.store.outbox import OutboxStats
from protocols.mqtt import health as h

if TYPE_CHECKING:
    from protocols.lock.messages import Status

ROOT = Path("/")


def software_version() -> str:
    try:
        return version("anju")
    except PackageNotFoundError:
        return "unknown"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def cpu_times(root: Path = ROOT) -> tuple[int, int]:
    """(busy, total) jiffies from /proc/stat's first line; (0, 0) when unreadable."""
    first = _read(root / "proc/stat").split("\n", 1)[0].split()
    if not first or first[0] != "cpu":
        return 0, 0
    try:
        values = [int(v) for v in first[1:9]]
    except ValueError:
        return 0, 0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values)
    return total - idle, total


def memory(root: Path = ROOT) -> tuple[float, float]:
    """(percent used, MB available) from /proc/meminfo."""
    info: dict[str, int] = {}
    for line in _read(root / "proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            info[key] = int(parts[0])  # kB
    total, available = info.get("MemTotal", 0), info.get("MemAvailable", 0)
    if total <= 0:
        return 0.0, 0.0
    used = min(100.0, max(0.0, 100.0 * (total - available) / total))
    return used, available / 1024


def temperature(root: Path = ROOT) -> float | None:
    """The first thermal zone's reading in °C (millidegrees in the file); None without one."""
    zones = sorted((root / "sys/class/thermal").glob("thermal_zone*/temp"))
    for zone in zones:
        text = _read(zone).strip()
        if text.lstrip("-").isdigit():
            celsius = int(text) / 1000
            if -80 <= celsius <= 200:
                return celsius
    return None


def uptime(root: Path = ROOT) -> int:
    parts = _read(root / "proc/uptime").split()
    try:
        return max(0, int(float(parts[0]))) if parts else 0
    except ValueError:
        return 0


def disk(path: Path) -> tuple[float, float]:
    """(MB free, percent free) of the filesystem holding `path` (its nearest existing folder)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return 0.0, 0.0
    percent = 100.0 * usage.free / usage.total if usage.total else 0.0
    return usage.free / 2**20, percent


class DoorView(Protocol):
    """What the probe reads of a door's service."""

    @property
    def door_id(self) -> str: ...

    frames: int


@runtime_checkable
class LockView(Protocol):
    """A lock that knows its state (the BLE driver: the last status the lock sent)."""

    status: Status | None


def door_health(door: DoorView, lock: object | None) -> h.DoorHealth:
    """A door as its service runs it, with its lock as last heard (nothing for a simulator)."""
    status = lock.status if isinstance(lock, LockView) else None
    if status is None:
        return h.DoorHealth(id=_name(door.door_id), state="running", frames=door.frames)
    return h.DoorHealth(
        id=_name(door.door_id),
        state="running",
        frames=door.frames,
        lock=h.LockState(status.bolt.name.lower()),
        open=status.door_open,
        battery_percent=status.battery,
    )


def _name(text: str) -> str:
    """A config name as the wire's Name takes it."""
    return text.replace("\x00", "")[:64] or "?"


class HealthProbe:
    def __init__(
        self,
        gateway_id: str,
        store: Path,
        pollers: Sequence[BusPoller],
        doors: Sequence[DoorView],
        *,
        started: datetime,
        root: Path = ROOT,
        locks: Mapping[str, object] | None = None,
    ) -> None:
        """`pollers`, `doors` and `locks` are read at each sample: they may change between."""
        self._gid = gateway_id
        self._store = store
        self._pollers = pollers
        self._doors = doors
        self._started = started
        self._root = root
        self._locks = locks if locks is not None else {}
        self._cpu = cpu_times(root)

    def _cpu_percent(self) -> float:
        busy, total = cpu_times(self._root)
        last_busy, last_total = self._cpu
        self._cpu = busy, total
        if total <= last_total:
            return 0.0
        return min(100.0, max(0.0, 100.0 * (busy - last_busy) / (total - last_total)))

    def sample(self, stats: OutboxStats, epoch: int, now: datetime) -> h.Health:
        """Blocking (files, disk): run it in a thread."""
        mem_percent, mem_available = memory(self._root)
        free_mb, free_percent = disk(self._store)
        meters: list[h.MeterHealth] = []
        buses: list[h.BusHealth] = []
        for poller in self._pollers:
            offline = 0
            for meter in poller.meters:
                status = h.MeterStatus(meter.health.status.value)
                offline += status is h.MeterStatus.OFFLINE
                error = "" if status is h.MeterStatus.OK else str(meter.health.last_error or "")
                meters.append(
                    h.MeterHealth(
                        id=_name(meter.device.id),
                        bus=_name(poller.name),
                        status=status,
                        failures=meter.health.failures,
                        last_error=error.replace("\x00", "")[:200],
                    )
                )
            buses.append(
                h.BusHealth(
                    name=_name(poller.name),
                    meters=len(poller.meters),
                    offline=offline,
                    requests=poller.requests,
                )
            )
        # Past the bound, the meters in trouble are the ones worth the bytes.
        meters.sort(key=lambda m: m.status is h.MeterStatus.OK)
        doors = [door_health(d, self._locks.get(d.door_id)) for d in self._doors]
        return h.Health(
            gateway_id=self._gid,
            epoch=epoch,
            seq=stats.last_seq,
            ts=now,
            version=software_version()[:64],
            started=self._started,
            uptime_s=uptime(self._root),
            cpu_percent=self._cpu_percent(),
            memory_percent=mem_percent,
            memory_available_mb=mem_available,
            disk_free_mb=free_mb,
            disk_free_percent=free_percent,
            temperature_c=temperature(self._root),
            pending=stats.pending,
            dropped=stats.dropped,
            buses=buses[: h.MAX_BUSES],
            meters=meters[: h.MAX_METERS],
            doors=doors[: h.MAX_DOORS],
        )
