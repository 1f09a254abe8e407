from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
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
    from protocols.face.contract import DEFAULT_THRESHOLD, FaceError
    from protocols.face.quality import ENROLLMENT_GATES

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
