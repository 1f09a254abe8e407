"""A BLE lock's settings (a door's `ble:` block when `lock: ble`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MAC = r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$"


class BleLockSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: Annotated[str, Field(pattern=MAC)]
    # The lock's 128-bit key from installation: 16 raw bytes or 32 hex digits, mode 0600.
    key_file: Path
    # Counters that must survive a restart (replay protection); JSON, written 0600.
    counter_file: Path
    adapter: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.:-]+$")] = (
        "hci0"
    )
    # One try: connect if needed, write, wait for the authenticated answer.
    command_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    attempts: Annotated[int, Field(ge=1, le=10)] = 3
    # Status polls keep the link up and collect the events the lock queued meanwhile.
    poll_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    # DEMO/TEST ONLY: `emulated` drives an emulated lock on a virtual radio inside the gateway
    # (edge/door/ble/emulated.py) instead of this host's adapter.
    radio: Literal["host", "emulated"] = "host"

    def relative_to(self, base: Path) -> BleLockSettings:
        def at(path: Path) -> Path:
            return path if path.is_absolute() else (base / path).resolve()

        return self.model_copy(
            update={"key_file": at(self.key_file), "counter_file": at(self.counter_file)}
        )
