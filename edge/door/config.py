"""A door's settings (one entry of a gateway's `doors:` list)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.door.ble.config import BleLockSettings
from protocols.face.threshold import DEFAULT_THRESHOLD


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SnapshotSettings(_Strict):
    """Privacy: no face image is kept unless a site opts in. When it does, the frame at each
    decision is kept encrypted (AES-256-GCM, key in `key_file`), bounded by count and age."""

    enabled: bool = False
    dir: Path = Path("data/snapshots")  # one sub-folder per door
    # 32 random bytes, raw or as 64 hex digits (`anju face keygen FILE` writes one)
    key_file: Path | None = None
    max_count: Annotated[int, Field(ge=1, le=100_000)] = 200
    max_age_h: Annotated[float, Field(gt=0, le=90 * 24)] = 72.0
    jpeg_quality: Annotated[int, Field(ge=30, le=95)] = 80

    @model_validator(mode="after")
    def _key(self) -> SnapshotSettings:
        if self.enabled and self.key_file is None:
            raise ValueError("key_file is required when snapshots are enabled")
        return self


def _is_local(source: str) -> bool:
    return "://" not in source and not source.startswith("usb:")


class DoorConfig(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    # rtsp://…, usb:N, a video file or a folder of images
    source: str
    # The cloud's gallery export for this door (JSON); none: the faces and rights of the
    # gateway's access list (down/access, docs/access.md) decide.
    gallery: Path | None = None
    # The gallery file is reloaded when it changes; this is how often the door looks.
    gallery_check_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    models_dir: Path | None = None  # default: ANJU_MODELS_DIR or ~/.cache/anju/models
    # `simulated` logs requests; `ble` drives a BLE lock (docs/locks.md) set up in `ble:`.
    lock: Literal["simulated", "ble"] = "simulated"
    ble: BleLockSettings | None = None
    threads: Annotated[int, Field(ge=1, le=16)] = 2
    detect_side: Annotated[int, Field(ge=160, le=1280, multiple_of=32)] = 320
    threshold: Annotated[float, Field(gt=0, lt=1)] = DEFAULT_THRESHOLD
    confirm_n: Annotated[int, Field(ge=1)] = 3
    confirm_m: Annotated[int, Field(ge=1)] = 5
    unlock_hold_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    max_fps: Annotated[float, Field(gt=0, le=60)] = 15.0
    snapshots: SnapshotSettings = SnapshotSettings()

    @model_validator(mode="after")
    def _window(self) -> DoorConfig:
        if self.confirm_n > self.confirm_m:
            raise ValueError("confirm_n must not exceed confirm_m")
        if (self.lock == "ble") != (self.ble is not None):
            raise ValueError("a `ble:` block goes with `lock: ble`, and only with it")
        return self

    def relative_to(self, base: Path) -> DoorConfig:
        """Relative file paths taken from `base` (the folder of the gateway's YAML file)."""

        def at(path: Path) -> Path:
            return path if path.is_absolute() else (base / path).resolve()

        snaps = self.snapshots
        key_file = None if snaps.key_file is None else at(snaps.key_file)
        return self.model_copy(
            update={
                "source": str(at(Path(self.source))) if _is_local(self.source) else self.source,
                "gallery": None if self.gallery is None else at(self.gallery),
                "models_dir": None if self.models_dir is None else at(self.models_dir),
                "snapshots": snaps.model_copy(update={"dir": at(snaps.dir), "key_file": key_file}),
                "ble": None if self.ble is None else self.ble.relative_to(base),
            }
        )
