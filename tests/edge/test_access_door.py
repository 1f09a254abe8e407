"""A door that decides by the access list: real photos through the face pipeline, the access
service's decision, the recording lock and the outbox."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from edge.door import service as door_service
from edge.door.config import DoorConfig
from edge.door.frames import FolderSource
from edge.door.lock import SimulatedLock
from edge.door.pipeline import DoorPipeline
from edge.door.service import DoorService
from protocols.access.schema import Credential, CredentialKind
from protocols.access.signing import encode_signed
from protocols.face.confirm import Confirmer
from protocols.face.gallery import Gallery
from protocols.face.threshold import DEFAULT_THRESHOLD
from tests.access_lists import KEY, T0, access_list, right
from tests.edge.test_access_service import NOON, Gateway
from tests.face_assets import door_stream, engine, enrolled, write_frames


def obama() -> Credential:
    vector = enrolled("obama.jpg").astype("<f4").tobytes()
    return Credential(
        id="f-obama", subject="tenant-obama", kind=CredentialKind.FACE,
        embedding=base64.b64encode(vector).decode(),
    )  # fmt: skip


async def run_door(
    tmp_path: Path, days: float, *, list_late: bool = False
) -> tuple[SimulatedLock, list[dict[str, Any]]]:
    """`list_late`: the door starts before the gateway has any list, which arrives once the
    door has waited a while without reading its camera."""
    gw = Gateway(tmp_path)
    try:
        lease = right("r-obama", "tenant-obama", start=T0, days=days)
        payload = encode_signed(access_list(1, credentials=[obama()], rights=[lease]), KEY)
        if not list_late:
            gw.service.receive(payload)
        config = DoorConfig(id="front", source=str(tmp_path / "frames"))
        pipeline = DoorPipeline(
            "front", engine(), Gallery.empty(), Confirmer(threshold=DEFAULT_THRESHOLD, n=3, m=5)
        )
        lock = SimulatedLock()
        source = FolderSource(
            write_frames(door_stream(["obama2.jpg", "biden.jpg"]), tmp_path / "frames")
        )
        ticks = count()
        service = DoorService(
            config, pipeline, source, lock, gw.outbox,
            now=lambda: NOON + timedelta(seconds=next(ticks) / 30), access=gw.service,
        )  # fmt: skip
        running = asyncio.create_task(service.run())
        if list_late:
            for _ in range(20):  # the door's waits (made instant) pass; the camera stays unread
                await asyncio.sleep(0)
            assert (service.frames, running.done()) == (0, False)
            gw.service.receive(payload)
        await running
        events = [
            r.payload for r in gw.outbox.pending() if r.payload["type"] != "access.list_applied"
        ]
    finally:
        gw.close()
    return lock, events


async def test_a_listed_face_opens_and_a_stranger_is_refused(tmp_path: Path) -> None:
    lock, events = await run_door(tmp_path, days=30)
    assert [(e["type"], e["reason"], e["subject"], e["how"]) for e in events] == [
        ("access.granted", "granted", "tenant-obama", "face"),
        ("access.refused", "unknown_credential", None, "face"),
    ]
    assert [r.person_id for r in lock.requests] == ["tenant-obama"]
    assert events[0]["score"] >= DEFAULT_THRESHOLD


async def test_a_face_whose_lease_ended_is_refused(tmp_path: Path) -> None:
    lock, events = await run_door(tmp_path, days=0.1)  # ended at T0 + 2.4 h, before NOON
    assert (events[0]["type"], events[0]["reason"], events[0]["subject"]) == (
        "access.refused",
        "expired",
        "tenant-obama",
    )
    assert lock.requests == []


async def test_the_door_waits_for_its_first_list_before_reading_the_camera(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder camera is played once: read before any list, the tenant would be refused
    `no_list`. The door waits, then decides by the list that arrives."""
    monkeypatch.setattr(door_service, "FIRST_LIST_WAIT_S", 0)
    lock, events = await run_door(tmp_path, days=30, list_late=True)
    assert [(e["type"], e["subject"]) for e in events] == [
        ("access.granted", "tenant-obama"),
        ("access.refused", None),
    ]
    assert [r.person_id for r in lock.requests] == ["tenant-obama"]
