"""The door inside the gateway: a folder-of-images camera → face decisions → the lock simulator,
and grant/deny events through the outbox, MQTT and cloud ingest into the database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.door.config import DoorConfig
from edge.door.lock import Lock, SimulatedLock
from edge.gateway import run_gateway
from tests.e2e.link_harness import Link, stop, wait_until
from tests.face_assets import door_stream, gallery_file, models_dir, write_frames

pytestmark = pytest.mark.timeout(60)


async def test_door_decisions_reach_the_lock_and_the_cloud(link: Link, tmp_path: Path) -> None:
    door = DoorConfig(
        id="front",
        source=str(write_frames(door_stream(["obama2.jpg", "biden.jpg"]), tmp_path / "cam")),
        gallery=gallery_file(tmp_path / "gallery.json", {"tenant-7": "obama.jpg"}),
        models_dir=models_dir(),
    )
    config = link.config.model_copy(update={"doors": [door]})
    locks: dict[str, SimulatedLock] = {}

    def lock_for(door: DoorConfig) -> Lock:
        return locks.setdefault(door.id, SimulatedLock(door.id))

    async def two_decisions() -> bool:
        events = await asyncio.to_thread(link.stored_events)
        return len([e for e in events if e[1] == "door.decision"]) == 2

    async with link.ingest():
        gateway = asyncio.create_task(run_gateway(config, locks=lock_for), name="gateway")
        try:
            await wait_until(two_decisions, 30, "two door decisions in the database")
        finally:
            await stop(gateway)
    events = link.stored_events()
    stored = [data for _, kind, _, data in events if kind == "door.decision"]
    assert [(d["verdict"], d["reason"], d["person_id"]) for d in stored] == [
        ("grant", "match", "tenant-7"),
        ("deny", "unknown_face", None),
    ]
    assert all(d["door"] == "front" and "snapshot" not in d for d in stored)
    assert [(r.door_id, r.person_id) for r in locks["front"].requests] == [("front", "tenant-7")]
