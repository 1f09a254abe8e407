"""Demo and test only: a gateway whose BLE locks are emulated inside its own process.

`radio: emulated` in a door's `ble:` block puts the driver on the virtual radio
(edge/door/ble/virtual.py) and starts, on first use, an emulated lock (edge/door/ble/emulator.py)
at the configured address with the configured key. The driver's code is the production one; only
the air and the lock are emulated. A real site never sets this: the lock it drives is its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bleak.backends.device import BLEDevice

from edge.door.ble.codec import AnjuCodec
from edge.door.ble.driver import Adapters, BleLock, load_lock_key
from edge.door.ble.emulator import EmulatedLock
from edge.door.ble.virtual import VirtualRadio
from edge.door.config import DoorConfig

ADAPTER_ADDRESS = "F0:00:00:00:00:A0"  # the gateway's own (virtual) adapter


class EmulatedRadio:
    """The driver's Radio seam over a virtual radio that brings up each registered lock (and
    the adapter asked for) the first time the driver looks for it."""

    def __init__(self) -> None:
        self.radio = VirtualRadio()
        self.keys: dict[str, bytes] = {}
        self.locks: dict[str, EmulatedLock] = {}
        self._starting = asyncio.Lock()

    async def _ensure(self, address: str, adapter: str) -> None:
        async with self._starting:
            if adapter not in self.radio.adapters:
                await self.radio.adapter(adapter, ADAPTER_ADDRESS)
            if address not in self.locks and address in self.keys:
                lock = EmulatedLock(self.radio, address, self.keys[address], auto_relock=True)
                await lock.start()
                self.locks[address] = lock

    async def find(self, address: str, adapter: str, timeout: float) -> BLEDevice | None:  # noqa: ASYNC109 - the scan's own bound
        await self._ensure(address, adapter)
        return await self.radio.find(address, adapter, timeout)

    def client_options(self) -> dict[str, Any]:
        return self.radio.client_options()


def emulated_locks(now: Callable[[], datetime]) -> Callable[[DoorConfig], BleLock]:
    """Like driver.host_locks, with each lock emulated on a virtual radio in this process."""
    adapters, radio = Adapters(), EmulatedRadio()

    def build(door: DoorConfig) -> BleLock:
        assert door.ble is not None  # the config ties `lock: ble` to a `ble:` block
        key = load_lock_key(door.ble.key_file)
        radio.keys[door.ble.address] = key
        return BleLock(
            door.id, door.ble, AnjuCodec(key), radio, adapters.get(door.ble.adapter), now=now
        )

    return build
