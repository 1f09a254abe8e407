"""A door's settings (one entry of a gateway's `doors:` list)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocols.face.contract import DEFAULT_THRESHOLD


class DoorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=64)]
    # rtsp://…, usb:N, a video file or a folder of images
    source: str
    gallery: Path  # the cloud's gallery export for this door (JSON)
    models_dir: Path | None = None  # default: ANJU_MODELS_DIR or ~/.cache/anju/models
    threads: Annotated[int, Field(ge=1, le=16)] = 2
    detect_side: Annotated[int, Field(ge=160, le=1280, multiple_of=32)] = 320
    threshold: Annotated[float, Field(gt=0, lt=1)] = DEFAULT_THRESHOLD
    confirm_n: Annotated[int, Field(ge=1)] = 3
    confirm_m: Annotated[int, Field(ge=1)] = 5
    unlock_hold_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    max_fps: Annotated[float, Field(gt=0, le=60)] = 15.0
    # Privacy: no face image leaves the door unless a site opts in.
    snapshots: bool = False

    @model_validator(mode="after")
    def _window(self) -> DoorConfig:
        if self.confirm_n > self.confirm_m:
            raise ValueError("confirm_n must not exceed confirm_m")
        return self
