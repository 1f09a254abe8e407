"""The health probe reads a Linux /proc and /sys tree (written here as the kernel writes them)
and the pollers it is given; a board without a thermal sensor reports no temperature."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from edge.config import ModbusBus
from edge.door.lock import SimulatedLock
from edge.health import HealthProbe, cpu_times, memory, temperature, uptime
from edge.meters.health import MeterStatus
from edge.meters.poller import BusPoller
from edge.meters.sink import OutboxSink
from edge.store.outbox import Outbox
from protocols.lock.messages import Bolt, Status
from protocols.mqtt import health as h
from protocols.mqtt import messages as msg

NOW = datetime(2026, 3, 1, tzinfo=UTC)
MEMINFO = "MemTotal:        1000000 kB\nMemFree:          100000 kB\nMemAvailable:     250000 kB\n"


def board(root: Path, *, busy: int, idle: int, sensor: bool = True) -> None:
    (root / "proc").mkdir(parents=True, exist_ok=True)
    (root / "proc/stat").write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 0 0 1 0\n")
    (root / "proc/meminfo").write_text(MEMINFO)
    (root / "proc/uptime").write_text("12345.67 40000.00\n")
    if sensor:
        zone = root / "sys/class/thermal/thermal_zone0"
        zone.mkdir(parents=True, exist_ok=True)
        (zone / "temp").write_text("51234\n")


def test_readers_parse_the_kernel_files(tmp_path: Path) -> None:
    board(tmp_path, busy=300, idle=700)
    assert cpu_times(tmp_path) == (300, 1000)
    assert memory(tmp_path) == (75.0, 250000 / 1024)
    assert temperature(tmp_path) == 51.234
    assert uptime(tmp_path) == 12345
    bare = tmp_path / "bare"
    bare.mkdir()
    assert (cpu_times(bare), memory(bare), temperature(bare), uptime(bare)) == (
        (0, 0), (0.0, 0.0), None, 0,
    )  # fmt: skip


async def test_a_sample_covers_the_box_buses_and_meters(tmp_path: Path) -> None:
    root = tmp_path / "root"
    board(root, busy=100, idle=900, sensor=False)
    outbox = Outbox(tmp_path / "gw.db")
    bus = ModbusBus.model_validate(
        {"name": "floor-1", "tcp": "127.0.0.1:1502", "devices": [
            {"id": "m1", "unit_id": 1, "profile": "eastron-sdm120"},
            {"id": "m2", "unit_id": 2, "profile": "eastron-sdm120"}]}
    )  # fmt: skip
    poller = BusPoller(bus, OutboxSink(outbox), now=lambda: NOW)
    try:
        poller.meters[1].health.status = MeterStatus.OFFLINE
        poller.meters[1].health.failures = 3
        probe = HealthProbe("gw-1", tmp_path / "gw.db", [poller], [], started=NOW, root=root)
        board(
            root, busy=400, idle=1600, sensor=False
        )  # 300 busy of 1000 jiffies since the probe began
        sample = probe.sample(outbox.stats(), outbox.epoch, NOW)
    finally:
        poller.close()
        outbox.close()
    assert sample.cpu_percent == 30.0
    assert sample.temperature_c is None  # no sensor on this board
    assert sample.disk_free_mb > 0
    assert [m.id for m in sample.meters] == ["m2", "m1"]  # trouble first
    assert sample.meters[0].status is h.MeterStatus.OFFLINE
    assert sample.buses == [h.BusHealth(name="floor-1", meters=2, offline=1, requests=0)]
    assert msg.decode(h.Health, msg.encode(sample)) == sample  # what the cloud will read


class Door:
    def __init__(self, door_id: str) -> None:
        self.door_id = door_id
        self.frames = 12


class HeardLock:
    """A lock as the BLE driver holds it: the last status the lock sent (None before)."""

    def __init__(self, status: Status | None) -> None:
        self.status = status


async def test_each_door_reports_its_lock_as_last_heard(tmp_path: Path) -> None:
    root = tmp_path / "root"
    board(root, busy=1, idle=1)
    outbox = Outbox(tmp_path / "gw.db")
    locks = {
        "front": HeardLock(Status(Bolt.UNLOCKED, door_open=True, battery=17)),
        "back": HeardLock(None),
        "side": SimulatedLock("side"),
    }
    doors = [Door("front"), Door("back"), Door("side")]
    try:
        probe = HealthProbe(
            "gw-1", tmp_path / "gw.db", [], doors, started=NOW, root=root, locks=locks
        )
        sample = probe.sample(outbox.stats(), outbox.epoch, NOW)
    finally:
        outbox.close()
    front, back, side = sample.doors
    assert (front.lock, front.open, front.battery_percent) == (h.LockState.UNLOCKED, True, 17)
    assert (back.lock, back.battery_percent, side.lock) == (None, None, None)
    wire = msg.encode(sample)
    assert b'"battery_percent":17' in wire
    assert wire.count(b"battery_percent") == 1  # nothing said of a lock not heard from
    assert msg.decode(h.Health, wire) == sample
