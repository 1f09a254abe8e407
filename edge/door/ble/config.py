"""A BLE lock's settings (a door's `ble:` block when `lock: ble`); the schema is the fleet's
(protocols/fleet/gateway.py), the paths are resolved here."""

from __future__ import annotations

from pathlib import Path

from protocols.fleet.gateway import BleLockSettings, EsphomeProxy

__all__ = ["BleLockSettings", "EsphomeProxy", "ble_relative_to"]


def ble_relative_to(settings: BleLockSettings, base: Path) -> BleLockSettings:
    def at(path: Path) -> Path:
        return path if path.is_absolute() else (base / path).resolve()

    proxies = tuple(
        p
        if p.noise_psk_file is None
        else p.model_copy(update={"noise_psk_file": at(p.noise_psk_file)})
        for p in settings.proxies
    )
    return settings.model_copy(
        update={
            "key_file": at(settings.key_file),
            "counter_file": at(settings.counter_file),
            "proxies": proxies,
        }
    )
