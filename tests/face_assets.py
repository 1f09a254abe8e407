"""Real face models and photos for the face tests, fetched once and cached outside the repo.

Models come through `anju models fetch` (registries, SHA-256 checked); photos from the sdist of
face_recognition==1.3.0. Without them the tests FAIL with the reason: CI has the registries.
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from anju.demo_door import fetch_photos
from anju.models.fetch import fetch
from edge.door.models import load_engine
from protocols.errors import AnjuError
from protocols.face.contract import FloatArray, ImageArray, embedding_to_text
from protocols.face.engine import FaceEngine
from protocols.face.gallery import ExportEntry, GalleryExport, export_contract
from protocols.face.models import default_models_dir
from protocols.face.quality import ENROLLMENT_GATES

PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")


@functools.cache
def models_dir() -> Path:
    where = default_models_dir(os.environ, Path.home())
    try:
        fetch(where)
    except AnjuError as exc:
        pytest.fail(f"face models could not be fetched into {where}: {exc}")
    return where


@functools.cache
def engine() -> FaceEngine:
    return load_engine(models_dir(), threads=2)


@functools.cache
def photos_dir() -> Path:
    try:
        return fetch_photos(PHOTOS)
    except AnjuError as exc:
        pytest.fail(str(exc))


@functools.cache
def _photo(name: str) -> ImageArray:
    image = cv2.imread(str(photos_dir() / name), cv2.IMREAD_COLOR)
    assert image is not None, name
    return np.asarray(image, dtype=np.uint8)


def photo(name: str) -> ImageArray:
    return _photo(name).copy()


def side_by_side(left: ImageArray, right: ImageArray) -> ImageArray:
    """Two photos on one canvas: an image with two faces."""
    height = min(left.shape[0], right.shape[0])
    parts = [cv2.resize(im, (im.shape[1] * height // im.shape[0], height)) for im in (left, right)]
    return np.asarray(np.hstack(parts), dtype=np.uint8)


def place(
    image: ImageArray, *, height: int, x: int, y: int = 0, size: tuple[int, int] = (640, 480)
) -> ImageArray:
    """A camera frame: the photo scaled to `height` and pasted at (x, y) on a grey background."""
    width = image.shape[1] * height // image.shape[0]
    scaled = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    frame = np.full((size[1], size[0], 3), 90, dtype=np.uint8)
    w = min(width, size[0] - x)
    h = min(height, size[1] - y)
    frame[y : y + h, x : x + w] = scaled[:h, :w]
    return frame


def empty_frame(seed: int, size: tuple[int, int] = (640, 480)) -> ImageArray:
    rng = np.random.default_rng(seed)
    frame = np.full((size[1], size[0], 3), 90, dtype=np.int16)
    frame += rng.integers(-20, 20, size=frame.shape, dtype=np.int16)
    return np.asarray(np.clip(frame, 0, 255), dtype=np.uint8)


@functools.cache
def _portrait(name: str) -> ImageArray:
    """The photo cropped to head and shoulders around its largest face."""
    image = _photo(name)
    (det, *_) = engine().detect(image)
    cx, cy = det.x + det.w / 2, det.y + det.h / 2
    half = int(max(det.w, det.h) * 1.1)
    x0, y0 = max(0, int(cx) - half), max(0, int(cy) - half)
    return image[y0 : int(cy) + half, x0 : int(cx) + half].copy()


def portrait_frame(name: str, *, face_px: int, x: int, y: int) -> ImageArray:
    """A 640x480 camera frame with the person's face about `face_px` wide at (x, y)."""
    crop = _portrait(name)
    # the crop is ~2.2 face widths across
    return place(crop, height=int(face_px * 2.2 * crop.shape[0] / crop.shape[1]), x=x, y=y)


def approach(name: str, seed: int) -> list[ImageArray]:
    """Six frames of one person walking up: growing, drifting across the frame."""
    steps = [(100, 60, 30), (115, 120, 40), (130, 180, 50), (150, 240, 40), (165, 280, 30)]
    steps.append((180, 300 + seed % 3 * 10, 20))
    return [portrait_frame(name, face_px=px, x=x, y=y) for px, x, y in steps]


def gap(seed: int, n: int = 6) -> list[ImageArray]:
    return [empty_frame(seed * 100 + i) for i in range(n)]


def door_stream(people: list[str]) -> list[ImageArray]:
    """Empty frames, then each person's approach followed by empty frames (12 per person)."""
    frames = gap(0, 3)
    for i, name in enumerate(people, 1):
        frames += approach(name, i) + gap(i)
    return frames


def write_frames(frames: list[ImageArray], folder: Path) -> Path:
    """A folder-of-images camera."""
    folder.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), frame)
    return folder


def enrolled(name: str) -> FloatArray:
    """The embedding enrollment makes of one photo."""
    main = engine().analyze(photo(name), gates=ENROLLMENT_GATES).main
    assert main is not None
    assert main.embedding is not None
    return main.embedding


def gallery_file(path: Path, people: dict[str, str], door_id: str = "front") -> Path:
    """The cloud's gallery export for a door, person id -> photo, written as JSON."""
    export = GalleryExport(
        door_id=door_id,
        generated_at=datetime(2026, 1, 1, tzinfo=UTC),
        contract=export_contract(),
        entries=[
            ExportEntry(person_id=who, embeddings=[embedding_to_text(enrolled(name))])
            for who, name in people.items()
        ],
    )
    path.write_text(export.model_dump_json())
    return path
