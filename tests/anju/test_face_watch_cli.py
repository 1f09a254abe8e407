"""`anju face watch|keygen|snapshots`: what an installer sees at a door, from its gateway config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

from click.testing import CliRunner

from anju.cli import cli
from edge.config import load_config
from edge.door.lock import SimulatedLock
from edge.door.service import create_door
from edge.store.outbox import Outbox
from tests.face_assets import door_stream, gallery_file, models_dir, write_frames


def _anju(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _gateway(tmp_path: Path, snapshots: bool) -> Path:
    write_frames(door_stream(["obama2.jpg", "biden.jpg"]), tmp_path / "cam")
    gallery_file(tmp_path / "gallery.json", {"tenant-7": "obama.jpg"})
    lines = [
        "gateway_id: gw-door",
        "doors:",
        "  - id: front",
        "    source: cam",
        "    gallery: gallery.json",
        f"    models_dir: {models_dir()}",
    ]
    if snapshots:
        lines += ["    snapshots:", "      enabled: true", "      key_file: snap.key"]
    config = tmp_path / "gw.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


def test_watch_shows_each_frame_and_the_decisions_without_unlocking(tmp_path: Path) -> None:
    config = _gateway(tmp_path, snapshots=False)
    code, out = _anju("face", "watch", "--config", str(config))
    assert code == 0, out
    decisions = [line for line in out.splitlines() if line.startswith("DECISION")]
    assert len(decisions) == 2
    assert decisions[0].startswith("DECISION GRANT match person=tenant-7")
    assert decisions[1].startswith("DECISION DENY unknown_face person=-")
    assert sum(line.startswith("frame ") for line in out.splitlines()) == 3 + 2 * 12
    assert "no face" in out
    assert "best tenant-7" in out
    assert not (tmp_path / "data").exists()  # watch keeps nothing


async def test_keygen_then_snapshots_lists_and_exports_the_sealed_frames(tmp_path: Path) -> None:
    config = _gateway(tmp_path, snapshots=True)
    code, out = _anju("face", "keygen", str(tmp_path / "snap.key"))
    assert code == 0, out
    code, out = _anju("face", "keygen", str(tmp_path / "snap.key"))
    assert code != 0
    assert "never overwritten" in out
    door = load_config(config).doors[0]
    outbox = Outbox(tmp_path / "gw.db")
    try:
        await create_door(door, SimulatedLock(), outbox, now=_ticking()).run()
    finally:
        outbox.close()
    code, out = _anju("face", "snapshots", "--config", str(config), "--export", str(tmp_path / "x"))
    assert code == 0, out
    rows = out.splitlines()
    assert rows[-1].startswith("2 snapshot(s) in ")
    assert "grant" in rows[0]
    assert "person=tenant-7" in rows[0]
    assert "deny" in rows[1]
    assert len(list((tmp_path / "x").glob("*.jpg"))) == 2


def test_snapshots_when_off_says_so(tmp_path: Path) -> None:
    code, out = _anju("face", "snapshots", "--config", str(_gateway(tmp_path, snapshots=False)))
    assert code != 0
    assert "snapshots are off" in out


def _ticking():  # a 30 fps camera's clock
    # From now: `anju face snapshots` ages frames by the wall clock (max_age_h), so a fixed
    # start date fails once the calendar is that far past it.
    start = datetime.now(UTC).replace(microsecond=0)
    ticks = count()
    return lambda: start + timedelta(seconds=next(ticks) / 30)
