from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from edge.door.config import DoorConfig
    from edge.door.pipeline import FrameResult
    from protocols.face.contract import ImageArray
    from protocols.face.engine import FaceEngine

_IMAGE = click.Path(path_type=Path, dir_okay=False, exists=True)
_models_option = click.option(
    "--models",
    "models_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Model folder (default: ANJU_MODELS_DIR or ~/.cache/anju/models).",
)


def _engine(models_dir: Path | None) -> FaceEngine:
    from edge.door.models import load_engine

    return load_engine(models_dir)


def _read(path: Path) -> ImageArray:
    import cv2
    import numpy as np

    from protocols.face.contract import FaceError

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FaceError(f"{path}: not an image OpenCV can read")
    return np.asarray(image, dtype=np.uint8)


@click.group()
def face() -> None:
    """On-site tools for the door camera: what is seen, and does it match."""


@face.command()
@click.argument("image", type=_IMAGE)
@_models_option
def detect(image: Path, models_dir: Path | None) -> None:
    """List the faces in IMAGE with size, pose, sharpness and the enrollment verdict."""
    from protocols.face.quality import ENROLLMENT_GATES, pose

    frame = _read(image)
    analysis = _engine(models_dir).analyze(frame, gates=ENROLLMENT_GATES, embed_at_most=99)
    click.echo(f"{image}: {frame.shape[1]}x{frame.shape[0]}, {len(analysis.faces)} face(s)")
    for i, found in enumerate(analysis.faces, 1):
        d = found.detection
        p = pose(d)
        sharp = "-" if found.sharpness is None else f"{found.sharpness:.0f}"
        verdict = "ok" if found.reject is None else f"refused: {found.reject.value}"
        click.echo(
            f"  #{i} box {d.x:.0f},{d.y:.0f} {d.w:.0f}x{d.h:.0f} score {d.score:.3f} "
            f"yaw {p.yaw:+.2f} roll {p.roll_deg:+.1f}° sharpness {sharp}  {verdict}"
        )


@face.command()
@click.argument("first", type=_IMAGE)
@click.argument("second", type=_IMAGE)
@click.option("--threshold", type=float, help="Cosine for 'same person' (default: the door's).")
@_models_option
def compare(first: Path, second: Path, threshold: float | None, models_dir: Path | None) -> None:
    """Cosine similarity of the main faces in two images, and the decision at the threshold."""
    from protocols.face.contract import FaceError
    from protocols.face.quality import ENROLLMENT_GATES
    from protocols.face.threshold import DEFAULT_THRESHOLD

    engine = _engine(models_dir)
    vectors = []
    for path in (first, second):
        main = engine.analyze(_read(path), gates=ENROLLMENT_GATES).main
        if main is None:
            raise FaceError(f"{path}: no face found")
        if main.embedding is None:
            raise FaceError(f"{path}: face refused: {main.reject}")
        vectors.append(main.embedding)
    limit = DEFAULT_THRESHOLD if threshold is None else threshold
    score = float(vectors[0] @ vectors[1])
    same = "same person" if score >= limit else "different people"
    click.echo(f"similarity {score:.3f} (threshold {limit:.2f}): {same}")


_config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The gateway's YAML file with the door.",
)
_door_option = click.option("--door", "door_id", help="Door id (default: the only door).")


def _door(config_path: Path, door_id: str | None) -> DoorConfig:
    from edge.config import load_config
    from protocols.errors import ConfigError

    doors = load_config(config_path).doors
    if door_id is None and len(doors) == 1:
        return doors[0]
    for door in doors:
        if door.id == door_id:
            return door
    known = ", ".join(d.id for d in doors) or "none"
    raise ConfigError(f"{config_path}: give --door, one of: {known}")


@face.command()
@_config_option
@_door_option
@click.option("--source", help="Watch this camera instead of the door's (rtsp://, usb:N, path).")
@click.option("--every", default=1, show_default=True, help="Print every Nth frame's line.")
def watch(config_path: Path, door_id: str | None, source: str | None, every: int) -> None:
    """Show a door's view live: each frame's face, gate and best match, and each decision it
    would take, with the door's own models, gallery and thresholds. Never unlocks."""
    import time
    from datetime import UTC, datetime

    from edge.door.frames import open_source
    from edge.door.models import load_engine
    from edge.door.pipeline import DoorPipeline
    from edge.door.service import load_gallery
    from protocols.face.confirm import Confirmer

    door = _door(config_path, door_id)
    if door.gallery is None:
        raise click.ClickException(f"door {door.id} decides by the access list: no gallery file")
    engine = load_engine(door.models_dir, threads=door.threads, detect_side=door.detect_side)
    gallery = load_gallery(door.gallery)
    confirmer = Confirmer(threshold=door.threshold, n=door.confirm_n, m=door.confirm_m)
    pipeline = DoorPipeline(door.id, engine, gallery, confirmer)
    camera = open_source(source or door.source, name=door.id)
    click.echo(f"[{door.id}] watching {source or door.source}; {len(gallery)} enrolled row(s)")
    frames = 0
    try:
        while not camera.ended:
            frame = camera.read()
            if frame is None:  # a live camera reconnecting: read() does not block then
                time.sleep(0.05)
                continue
            frames += 1
            decision, result = pipeline.process(frame, datetime.now(UTC))
            if frames % every == 0:
                click.echo(f"frame {frames:5d}  {_frame_line(result)}")
            if decision is not None:
                who = decision.person_id or "-"
                click.echo(
                    f"DECISION {decision.verdict.value.upper()} {decision.reason.value} "
                    f"person={who} score={decision.score:.3f} "
                    f"frames={decision.frames}/{confirmer.m}"
                )
    except KeyboardInterrupt:
        pass
    finally:
        camera.close()


def _frame_line(result: FrameResult) -> str:
    timing = f"{result.timings_ms.get('total', 0.0):5.1f} ms"
    if result.faces == 0:
        return f"no face                          {timing}"
    if result.match is None:
        return f"{result.faces} face(s), refused: {result.reject or '-':<12}  {timing}"
    who = result.match.identity.person_id if result.match.identity else "-"
    return f"{result.faces} face(s), best {who} {result.match.score:.3f}  {timing}"


@face.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def keygen(path: Path) -> None:
    """Write a new snapshot key (32 random bytes, hex, owner-only) to PATH; never overwrites."""
    from edge.door.snapshots import write_key
    from protocols.face.contract import FaceError

    try:
        write_key(path)
    except FileExistsError:
        raise FaceError(f"{path} exists; a key is never overwritten") from None
    click.echo(f"snapshot key written to {path}; set snapshots.key_file to it")


@face.command()
@_config_option
@_door_option
@click.option(
    "--export",
    "export_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Also write the decrypted frames here as JPEG files.",
)
def snapshots(config_path: Path, door_id: str | None, export_dir: Path | None) -> None:
    """List a door's sealed event snapshots (opt-in per site), newest last."""
    from datetime import UTC, datetime

    from edge.door.snapshots import open_store
    from protocols.face.contract import FaceError

    door = _door(config_path, door_id)
    store = open_store(door.snapshots, door.id, now=lambda: datetime.now(UTC))
    if store is None:
        raise FaceError(f"door {door.id}: snapshots are off (snapshots.enabled in {config_path})")
    names = store.names()
    for name in names:
        snap = store.read(name)
        meta = snap.meta
        click.echo(
            f"{snap.taken:%Y-%m-%d %H:%M:%S}Z  {meta.get('verdict', '?'):<5} "
            f"{meta.get('reason', '?'):<16} person={meta.get('person_id') or '-'} "
            f"score={meta.get('score', 0):.3f}  {name}"
        )
        if export_dir is not None:
            export_dir.mkdir(parents=True, exist_ok=True)
            (export_dir / name.replace(".snap", ".jpg")).write_bytes(snap.jpeg)
    click.echo(f"{len(names)} snapshot(s) in {store.folder}")
