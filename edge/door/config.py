"""A door's settings (one entry of a gateway's `doors:` list); the schema is the fleet's
(protocols/fleet/gateway.py), shared with the cloud's remote configuration. Its paths are
resolved here."""

from __future__ import annotations

from pathlib import Path

from edge.door.ble.config import ble_relative_to
from protocols.fleet.gateway import DoorConfig, KeypadSettings, SnapshotSettings

__all__ = ["DoorConfig", "KeypadSettings", "SnapshotSettings", "door_relative_to"]


def _is_local(source: str) -> bool:
    return "://" not in source and not source.startswith("usb:")


def door_relative_to(door: DoorConfig, base: Path) -> DoorConfig:
    """Relative file paths taken from `base` (the folder of the gateway's YAML file)."""

    def at(path: Path) -> Path:
        return path if path.is_absolute() else (base / path).resolve()

    snaps = door.snapshots
    key_file = None if snaps.key_file is None else at(snaps.key_file)
    return door.model_copy(
        update={
            "source": str(at(Path(door.source))) if _is_local(door.source) else door.source,
            "gallery": None if door.gallery is None else at(door.gallery),
            "models_dir": None if door.models_dir is None else at(door.models_dir),
            "snapshots": snaps.model_copy(update={"dir": at(snaps.dir), "key_file": key_file}),
            "ble": None if door.ble is None else ble_relative_to(door.ble, base),
            "keypad": None
            if door.keypad is None
            else door.keypad.model_copy(update={"port": at(door.keypad.port)}),
        }
    )
