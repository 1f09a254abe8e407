"""Opt-in event snapshots: the frame at a decision, JPEG-encoded and sealed with AES-256-GCM.

A file holds MAGIC, a 12-byte nonce and the ciphertext of (4-byte length, JSON metadata, JPEG).
The door id and the file name are authenticated as associated data, so a file cannot be passed
off as another door's or another moment's. Names carry only the time and a random tag; who was
at the door is inside the ciphertext. The store keeps at most `max_count` files, none older
than `max_age_h`.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge.door.config import SnapshotSettings
from edge.keyfile import read_key
from protocols.face.contract import FaceError, ImageArray
from runtime.private_files import FILE_MODE, private_file, private_folder

log = logging.getLogger(__name__)

MAGIC = b"ANJUSNAP1"
SUFFIX = ".snap"
KEY_BYTES = 32
_NAME_TIME = "%Y%m%dT%H%M%S%fZ"


def load_key(path: Path) -> bytes:
    """32 raw bytes, or 64 hex digits (with or without a trailing newline)."""
    return read_key(path, KEY_BYTES, "snapshot key")


def write_key(path: Path) -> None:
    """A new random key as hex, readable by the owner only; never overwrites one."""
    private_folder(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(KEY_BYTES) + "\n")


@dataclass(frozen=True, slots=True)
class Snapshot:
    name: str
    taken: datetime
    meta: dict[str, Any]
    jpeg: bytes


def _taken(name: str) -> datetime | None:
    try:
        return datetime.strptime(name.split("-", 1)[0], _NAME_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


class SnapshotStore:
    def __init__(
        self,
        settings: SnapshotSettings,
        door_id: str,
        key: bytes,
        *,
        now: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._door = door_id
        self._aead = AESGCM(key)
        self._now = now
        self.folder = settings.dir / door_id

    def keep(self, frame: ImageArray, taken: datetime, meta: dict[str, Any]) -> str:
        """Seal and store one frame; returns the file name. Prunes the folder afterwards."""
        quality = [cv2.IMWRITE_JPEG_QUALITY, self._settings.jpeg_quality]
        ok, jpeg = cv2.imencode(".jpg", frame, quality)
        if not ok:
            raise FaceError("snapshot: the frame could not be encoded as JPEG")
        name = f"{taken.astimezone(UTC).strftime(_NAME_TIME)}-{secrets.token_hex(4)}{SUFFIX}"
        header = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
        plain = struct.pack(">I", len(header)) + header + jpeg.tobytes()
        nonce = secrets.token_bytes(12)
        sealed = MAGIC + nonce + self._aead.encrypt(nonce, plain, self._aad(name))
        private_folder(self.folder)
        tmp = self.folder / f".{name}.part"
        private_file(tmp)
        tmp.write_bytes(sealed)
        tmp.replace(self.folder / name)
        self.prune()
        return name

    def prune(self) -> int:
        """Drop files past the age limit, then the oldest beyond the count; returns how many."""
        if not self.folder.is_dir():
            return 0
        oldest_kept = self._now() - timedelta(hours=self._settings.max_age_h)
        files = sorted(self.folder.glob(f"*{SUFFIX}"))  # names sort by time
        doomed = [p for p in files if (_taken(p.name) or oldest_kept) < oldest_kept]
        alive = [p for p in files if p not in doomed]
        doomed += alive[: max(0, len(alive) - self._settings.max_count)]
        for path in doomed:
            path.unlink(missing_ok=True)
        return len(doomed)

    def read(self, name: str) -> Snapshot:
        data = (self.folder / name).read_bytes()
        if not data.startswith(MAGIC):
            raise FaceError(f"{name}: not an Anju snapshot")
        nonce, body = data[len(MAGIC) : len(MAGIC) + 12], data[len(MAGIC) + 12 :]
        try:
            plain = self._aead.decrypt(nonce, body, self._aad(name))
        except InvalidTag:
            raise FaceError(f"{name}: wrong key, another door's file, or damaged") from None
        (size,) = struct.unpack(">I", plain[:4])
        meta = json.loads(plain[4 : 4 + size])
        taken = _taken(name) or datetime.min.replace(tzinfo=UTC)
        return Snapshot(name, taken, meta, plain[4 + size :])

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.glob(f"*{SUFFIX}"))

    def _aad(self, name: str) -> bytes:
        return MAGIC + self._door.encode() + b"/" + name.encode()


def open_store(
    settings: SnapshotSettings, door_id: str, *, now: Callable[[], datetime]
) -> SnapshotStore | None:
    """None when the site has not opted in: then nothing is ever written."""
    if not settings.enabled:
        return None
    assert settings.key_file is not None  # the config refuses enabled without a key
    store = SnapshotStore(settings, door_id, load_key(settings.key_file), now=now)
    dropped = store.prune()
    if dropped:
        log.info("[%s] dropped %d snapshot(s) past the limits", door_id, dropped)
    return store
