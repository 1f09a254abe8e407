"""An emulated lock on a virtual radio and the gateway's driver for it: the real bytes over
bumble's GATT, reached through bleak and bleak-retry-connector."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge.door.ble.codec import AnjuCodec
from edge.door.ble.config import BleLockSettings
from edge.door.ble.driver import Adapters, BleLock
from edge.door.ble.emulator import EmulatedLock
from edge.door.ble.virtual import VirtualAdapter, VirtualRadio

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
ADAPTER_ADDRESS = "F0:00:00:00:00:A0"
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@dataclass
class World:
    radio: VirtualRadio
    adapter: VirtualAdapter
    adapters: Adapters
    folder: Path
    locks: list[EmulatedLock]

    async def add_lock(self, address: str, key: bytes = KEY, **kw: object) -> EmulatedLock:
        lock = EmulatedLock(self.radio, address, key, name=f"lock-{address[-2:]}", **kw)  # type: ignore[arg-type]
        await lock.start()
        self.locks.append(lock)
        return lock

    def driver(self, address: str, key: bytes = KEY, **settings: object) -> BleLock:
        config = BleLockSettings.model_validate(
            {
                "address": address,
                "key_file": self.folder / "unused.key",
                "counter_file": self.folder / f"{address.replace(':', '')}.json",
                "adapter": "hci0",
                "command_timeout_s": 2.0,
                "attempts": 2,
                **settings,
            }
        )
        codec = AnjuCodec(key)
        return BleLock(
            "front", config, codec, self.radio, self.adapters.get("hci0"), now=lambda: NOW
        )


@asynccontextmanager
async def ble_world(folder: Path) -> AsyncIterator[World]:
    radio = VirtualRadio()
    adapter = await radio.adapter("hci0", ADAPTER_ADDRESS)
    world = World(radio, adapter, Adapters(), folder, [])
    try:
        yield world
    finally:
        await adapter.close()
        for lock in world.locks:
            await lock.stop()
