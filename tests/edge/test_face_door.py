"""The door end to end on a synthetic camera stream made from real photos, through the real
outbox and a recording lock; the frame sources; and refusal without verified models."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.door.config import DoorConfig
from edge.door.frames import CaptureSource, FolderSource, open_source
from edge.door.lock import SimulatedLock
from edge.door.pipeline import EVENT_KIND, DoorPipeline
from edge.door.service import DoorService, GalleryFile, create_door, load_gallery
from edge.store.outbox import Outbox
from protocols.face.confirm import Confirmer
from protocols.face.gallery import Gallery, Identity
from protocols.face.models import EXPECTED_FILES, ModelsMissingError
from protocols.face.threshold import DEFAULT_THRESHOLD
from tests.face_assets import (
    door_stream,
    engine,
    enrolled,
    gallery_file,
    models_dir,
    write_frames,
)

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
FRAME_S = 1 / 30


def _clock():
    ticks = count()
    return lambda: T0 + timedelta(seconds=next(ticks) * FRAME_S)


async def _run_door(tmp_path: Path, gallery: Gallery, people: list[str]):
    config = DoorConfig(id="front", source=str(tmp_path / "frames"), gallery=tmp_path / "g.json")
    pipeline = DoorPipeline(
        "front", engine(), gallery, Confirmer(threshold=DEFAULT_THRESHOLD, n=3, m=5)
    )
    outbox = Outbox(tmp_path / "gw.db")
    lock = SimulatedLock()
    source = FolderSource(write_frames(door_stream(people), tmp_path / "frames"))
    service = DoorService(config, pipeline, source, lock, outbox, now=_clock())
    try:
        await service.run()
        events = [row.payload for row in outbox.pending() if row.kind == EVENT_KIND]
    finally:
        outbox.close()
    return service, lock, events


async def test_stream_yields_exactly_the_expected_grants_and_denials(tmp_path: Path) -> None:
    gallery = Gallery([Identity("tenant-obama")], enrolled("obama.jpg")[None, :])
    service, lock, events = await _run_door(
        tmp_path, gallery, ["obama2.jpg", "biden.jpg", "obama3.jpg"]
    )
    assert [(e["verdict"], e["reason"], e["person_id"]) for e in events] == [
        ("grant", "match", "tenant-obama"),
        ("deny", "unknown_face", None),
        ("grant", "match", "tenant-obama"),
    ]
    assert [r.person_id for r in lock.requests] == ["tenant-obama", "tenant-obama"]
    assert {e["source"] for e in events} == {"front"}  # the door, as the access list's events
    assert service.frames == 3 + 3 * 12
    for e in events:
        assert e["frames"] == 3
        # decided on the third agreeing frame of the approach: 2 frame intervals at 30 fps
        assert e["latency_ms"] == pytest.approx(2 * FRAME_S * 1000, abs=0.5)
        assert set(e["timings_ms"]) == {"detect", "align", "embed", "match", "total"}
    assert events[0]["score"] >= DEFAULT_THRESHOLD > events[1]["score"]


async def test_a_tenant_whose_access_ended_is_refused_offline(tmp_path: Path) -> None:
    ended = Identity("tenant-biden", valid_until=T0 - timedelta(days=1))
    vectors = np.stack([enrolled("obama.jpg"), enrolled("biden.jpg")])
    gallery = Gallery([Identity("tenant-obama"), ended], vectors)
    _, lock, events = await _run_door(tmp_path, gallery, ["biden.jpg", "obama2.jpg"])
    assert [(e["verdict"], e["reason"], e["person_id"]) for e in events] == [
        ("deny", "access_not_valid", "tenant-biden"),
        ("grant", "match", "tenant-obama"),
    ]
    assert [r.person_id for r in lock.requests] == ["tenant-obama"]


def test_door_refuses_to_start_without_verified_models(tmp_path: Path) -> None:
    config = DoorConfig(
        id="front", source=str(tmp_path), gallery=tmp_path / "g.json", models_dir=tmp_path / "m"
    )
    outbox = Outbox(tmp_path / "o.db")
    try:
        with pytest.raises(ModelsMissingError, match="anju models fetch"):
            create_door(config, SimulatedLock(), outbox, now=_clock())
        shutil.copytree(models_dir(), tmp_path / "m")
        victim = tmp_path / "m" / EXPECTED_FILES["recognizer"]
        data = bytearray(victim.read_bytes())
        data[1000] ^= 0xFF
        victim.write_bytes(bytes(data))
        with pytest.raises(ModelsMissingError, match="damaged or was replaced"):
            create_door(config, SimulatedLock(), outbox, now=_clock())
    finally:
        outbox.close()


def _video(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30, (320, 240))
    for i in range(frames):
        writer.write(np.full((240, 320, 3), i * 10, np.uint8))
    writer.release()
    return path


def test_video_file_plays_once(tmp_path: Path) -> None:
    source = open_source(str(_video(tmp_path / "clip.avi", 5)))
    got = []
    while not source.ended:
        frame = source.read()
        if frame is not None:
            got.append(frame.shape)
    assert got == [(240, 320, 3)] * 5


def test_stream_drop_reconnects_after_backoff(tmp_path: Path) -> None:
    clip = _video(tmp_path / "clip.avi", 3)
    now = [0.0]
    source = CaptureSource(str(clip), clock=lambda: now[0])  # a live stream: end = drop
    assert [source.read() is not None for _ in range(4)] == [True, True, True, False]
    assert source.opens == 1
    assert source.read() is None  # backing off: not yet reopened
    assert source.opens == 1
    now[0] = 60.0
    assert source.read() is not None
    assert source.opens == 2
    source.close()
    assert source.ended


def test_missing_camera_keeps_retrying(tmp_path: Path) -> None:
    now = [0.0]
    source = CaptureSource(str(tmp_path / "nothing.avi"), clock=lambda: now[0])
    for step in range(3):
        now[0] = step * 100.0
        assert source.read() is None
    assert source.opens == 3
    assert not source.ended


def test_gallery_file_reloads_when_it_changes_and_keeps_the_old_on_a_bad_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = gallery_file(tmp_path / "g.json", {"tenant-biden": "biden.jpg"})
    now = [0.0]
    watch = GalleryFile(path, every_s=10, clock=lambda: now[0])
    assert not watch.due()
    now[0] = 10.0
    assert watch.due()
    assert watch.reload() is None  # unchanged
    assert not watch.due()
    gallery_file(path, {"tenant-biden": "biden.jpg", "tenant-obama": "obama.jpg"})
    now[0] = 20.0
    fresh = watch.reload()
    assert fresh is not None
    assert len(fresh) == 2
    for _ in range(2):
        path.write_text(path.read_text()[:-20] + " " * 25)  # cut short: not an export
        now[0] += 10
        with caplog.at_level(logging.WARNING):
            assert watch.reload() is None
    assert len([r for r in caplog.records if "keeping the old" in r.message]) == 1


class _Rewriting:
    """A folder camera that replaces the door's gallery file after frame `at`."""

    def __init__(self, source: FolderSource, at: int, rewrite: Callable[[], object]) -> None:
        self._source, self._at, self._rewrite, self._n = source, at, rewrite, 0

    @property
    def ended(self) -> bool:
        return self._source.ended

    def read(self) -> np.ndarray | None:
        self._n += 1
        if self._n == self._at:
            self._rewrite()
        return self._source.read()

    def close(self) -> None:
        self._source.close()


async def test_a_new_gallery_export_takes_effect_without_a_restart(tmp_path: Path) -> None:
    path = gallery_file(tmp_path / "g.json", {"tenant-biden": "biden.jpg"})
    config = DoorConfig(id="front", source=str(tmp_path / "frames"), gallery=path)
    pipeline = DoorPipeline(
        "front", engine(), load_gallery(path), Confirmer(threshold=DEFAULT_THRESHOLD)
    )
    frames = write_frames(door_stream(["obama2.jpg", "obama3.jpg"]), tmp_path / "frames")
    # after the first approach (3 empty + 12 frames): tenant-obama is enrolled
    source = _Rewriting(
        FolderSource(frames), 16, lambda: gallery_file(path, {"tenant-obama": "obama.jpg"})
    )
    outbox = Outbox(tmp_path / "gw.db")
    lock = SimulatedLock()
    watch = GalleryFile(path, every_s=1e-9)  # look before every frame
    try:
        service = DoorService(
            config, pipeline, source, lock, outbox, now=_clock(), gallery_file=watch
        )
        await service.run()
        events = [row.payload for row in outbox.pending() if row.kind == EVENT_KIND]
    finally:
        outbox.close()
    assert [(e["verdict"], e["person_id"]) for e in events] == [
        ("deny", None),
        ("grant", "tenant-obama"),
    ]
    assert [r.person_id for r in lock.requests] == ["tenant-obama"]
