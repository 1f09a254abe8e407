"""Event snapshots are an opt-in per site: off, the door writes no image anywhere; on, it keeps
the frame at each decision sealed with AES-256-GCM, bounded by count and age."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.door.config import DoorConfig, SnapshotSettings
from edge.door.lock import SimulatedLock
from edge.door.pipeline import EVENT_KIND
from edge.door.service import create_door
from edge.door.snapshots import SnapshotStore, load_key, write_key
from edge.store.outbox import Outbox
from protocols.errors import ConfigError
from protocols.face.contract import FaceError
from tests.face_assets import door_stream, empty_frame, gallery_file, write_frames

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _clock():
    ticks = count()
    return lambda: T0 + timedelta(seconds=next(ticks) / 30)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


async def _run(tmp_path: Path, **door: object) -> tuple[list[dict[str, object]], SimulatedLock]:
    frames = write_frames(door_stream(["obama2.jpg", "biden.jpg"]), tmp_path / "frames")
    config = DoorConfig.model_validate(
        {
            "id": "front",
            "source": str(frames),
            "gallery": gallery_file(tmp_path / "gallery.json", {"tenant-obama": "obama.jpg"}),
            **door,
        }
    )
    outbox = Outbox(tmp_path / "gw.db")
    lock = SimulatedLock()
    try:
        await create_door(config, lock, outbox, now=_clock()).run()
        return [r.payload for r in outbox.pending() if r.kind == EVENT_KIND], lock
    finally:
        outbox.close()


async def test_off_by_default_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default snapshot folder is relative: it would land here
    before = _files(tmp_path)
    events, lock = await _run(tmp_path)
    assert [e["verdict"] for e in events] == ["grant", "deny"]
    assert len(lock.requests) == 1
    assert all("snapshot" not in e for e in events)
    written = _files(tmp_path) - before
    frames_and_store = {p for p in written if p.startswith(("frames/", "gw.db", "gallery.json"))}
    assert written == frames_and_store
    assert not (tmp_path / "data").exists()


@pytest.mark.usefixtures("usual_umask")
async def test_on_each_decision_keeps_one_sealed_frame(tmp_path: Path) -> None:
    write_key(tmp_path / "snap.key")
    settings = {
        "enabled": True,
        "dir": str(tmp_path / "snaps"),
        "key_file": str(tmp_path / "snap.key"),
    }
    events, _ = await _run(tmp_path, snapshots=settings)
    names = [e["snapshot"] for e in events]
    folder = tmp_path / "snaps" / "front"
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    # a photo of a face is personal data even sealed: the owner only
    assert stat.S_IMODE((tmp_path / "snaps").stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}
    store = SnapshotStore(
        SnapshotSettings.model_validate(settings),
        "front",
        load_key(tmp_path / "snap.key"),
        now=_clock(),
    )
    for event, name in zip(events, names, strict=True):
        raw = (folder / str(name)).read_bytes()
        assert b"\xff\xd8\xff" not in raw  # no JPEG in the clear
        assert b"tenant" not in raw
        assert "tenant" not in str(name)
        snap = store.read(str(name))
        assert snap.meta["verdict"] == event["verdict"]
        assert snap.meta["person_id"] == event["person_id"]
        image = cv2.imdecode(np.frombuffer(snap.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (480, 640, 3)
    other = SnapshotStore(SnapshotSettings(), "front", os.urandom(32), now=_clock())
    other.folder = folder
    with pytest.raises(FaceError, match="wrong key"):
        other.read(str(names[0]))
    renamed = SnapshotStore(
        SnapshotSettings.model_validate(settings),
        "back",
        load_key(tmp_path / "snap.key"),
        now=_clock(),
    )
    renamed.folder = folder
    with pytest.raises(FaceError, match="another door"):
        renamed.read(str(names[0]))


def test_the_store_is_bounded_by_count_and_age(tmp_path: Path) -> None:
    now = [T0]
    settings = SnapshotSettings(
        enabled=True, dir=tmp_path, key_file=tmp_path / "k", max_count=3, max_age_h=1
    )
    store = SnapshotStore(settings, "front", os.urandom(32), now=lambda: now[0])
    frame = empty_frame(1)
    kept = []
    for minute in range(5):
        now[0] = T0 + timedelta(minutes=minute)
        kept.append(store.keep(frame, now[0], {"i": minute}))
    assert store.names() == kept[-3:]  # the newest three
    now[0] = T0 + timedelta(minutes=62, seconds=30)  # only minute 2's file is past an hour
    assert store.prune() == 1
    assert store.names() == kept[-2:]
    now[0] = T0 + timedelta(hours=5)
    assert store.prune() == 2
    assert store.names() == []


def test_enabled_without_a_key_is_refused_and_a_bad_key_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="key_file is required"):
        SnapshotSettings(enabled=True)
    (tmp_path / "short.key").write_text("abcd\n")
    with pytest.raises(ConfigError, match="32 random bytes or 64 hex"):
        load_key(tmp_path / "short.key")
    write_key(tmp_path / "new.key")
    assert len(load_key(tmp_path / "new.key")) == 32
    assert (tmp_path / "new.key").stat().st_mode & 0o077 == 0
    with pytest.raises(FileExistsError):
        write_key(tmp_path / "new.key")
