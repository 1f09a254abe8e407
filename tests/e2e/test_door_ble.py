"""The door with a BLE lock inside the gateway: a face grant opens the emulated lock over GATT
(bleak through the virtual radio), and the lock's own events travel the same outbox, MQTT and
ingest path into the database as the door's decisions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.door.config import DoorConfig
from edge.door.lock import Lock
from edge.gateway import run_gateway
from protocols.lock.messages import Bolt
from tests.e2e.link_harness import Link, stop, wait_until
from tests.edge.ble_world import ble_world
from tests.face_assets import door_stream, gallery_file, models_dir, write_frames

pytestmark = pytest.mark.timeout(60)
ADDRESS = "F0:00:00:00:00:01"


async def test_face_grant_opens_the_ble_lock_and_its_events_reach_the_cloud(
    link: Link, tmp_path: Path
) -> None:
    door = DoorConfig(
        id="front",
        source=str(write_frames(door_stream(["obama2.jpg"]), tmp_path / "cam")),
        gallery=gallery_file(tmp_path / "gallery.json", {"tenant-7": "obama.jpg"}),
        models_dir=models_dir(),
    )
    config = link.config.model_copy(update={"doors": [door]})

    async def stored(kind: str, n: int) -> bool:
        events = await asyncio.to_thread(link.stored_events)
        return len([e for e in events if e[1] == kind]) >= n

    async with ble_world(tmp_path / "ble") as world:
        emulated = await world.add_lock(ADDRESS, battery=19)
        driver = world.driver(ADDRESS, poll_s=3600)

        def lock_for(_door: DoorConfig) -> Lock:
            return driver

        async with link.ingest():
            gateway = asyncio.create_task(run_gateway(config, locks=lock_for), name="gateway")
            try:
                await wait_until(lambda: stored("door.decision", 1), 30, "the grant stored")
                assert emulated.unlocks == 1
                assert emulated.bolt is Bolt.UNLOCKED
                await emulated.open_door()
                await emulated.set_battery(12)  # was 19: already low, no second alarm
                await emulated.tamper()
                await wait_until(lambda: stored("lock.event", 2), 30, "lock events stored")
            finally:
                await stop(gateway)
    events = [data for _, kind, _, data in link.stored_events() if kind == "lock.event"]
    assert [(e["door"], e["event"], e["bolt"], e["door_open"]) for e in events] == [
        ("front", "opened", "unlocked", True),
        ("front", "tamper", "unlocked", True),
    ]
    decision = next(d for _, k, _, d in link.stored_events() if k == "door.decision")
    assert decision["verdict"] == "grant"
    assert "lock_error" not in decision
