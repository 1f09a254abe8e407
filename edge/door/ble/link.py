"""The radio seam: where bleak finds a lock, and one GATT connection to it.

bleak's (and bleak-retry-connector's) exceptions become LockError here and nowhere else.
A `Radio` says how to reach locks: this host's adapters through BlueZ (`HostRadio`), an
ESPHome Bluetooth proxy (bleak-esphome supplies the BLEDevice and client backend; see
docs/locks.md), or the virtual radio of tests and the demo (edge/door/ble/virtual.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Protocol

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection

from protocols.lock.errors import LockError, LockTimeoutError, LockUnreachableError
from protocols.lock.gatt import COMMAND_UUID, NOTIFY_UUID

log = logging.getLogger(__name__)


class Radio(Protocol):
    async def find(self, address: str, adapter: str, timeout: float) -> BLEDevice | None:  # noqa: ASYNC109 - the scan's own bound
        """The lock as an adapter hears it, or None when it is not heard."""
        ...

    def client_options(self) -> dict[str, Any]:
        """Extra BleakClient arguments (a custom backend)."""
        ...


class HostRadio:
    """This host's adapters (BlueZ on a gateway)."""

    async def find(self, address: str, adapter: str, timeout: float) -> BLEDevice | None:  # noqa: ASYNC109
        return await BleakScanner.find_device_by_address(
            address, timeout=timeout, bluez={"adapter": adapter}
        )

    def client_options(self) -> dict[str, Any]:
        return {}


# A radio's own library errors and what each means for a lock (first match wins), added by
# the radio's module when it is imported (aioesphomeapi's for ESPHome proxies): this stays the
# one place that translates them, without importing a library a gateway may not have.
RADIO_ERRORS: dict[type[Exception], type[LockError]] = {}


@contextmanager
def translated(address: str) -> Iterator[None]:
    """The one place that knows bleak's (and the radios' libraries') exceptions."""
    try:
        yield
    except LockError:
        raise
    except TimeoutError:
        raise LockTimeoutError(f"lock {address}: no answer in time") from None
    except BleakError as exc:  # includes bleak-retry-connector's (not found, out of slots)
        raise LockUnreachableError(f"lock {address}: {exc}") from None
    except (EOFError, OSError) as exc:  # a dropped D-Bus or proxy connection
        raise LockUnreachableError(f"lock {address}: link lost ({exc})") from None
    except Exception as exc:
        for kind, error in RADIO_ERRORS.items():
            if isinstance(exc, kind):
                raise error(f"lock {address}: radio link failed ({exc})") from None
        raise


class BleakLink:
    """One open GATT connection: frames out on the command characteristic, notifications in
    to `on_frame`; `on_lost` runs when the link drops without our asking. `uuids` are the
    (command, notify) characteristics: Anju's by default, a vendor codec's otherwise."""

    def __init__(self, client: BleakClient, address: str, command_uuid: str) -> None:
        self._client = client
        self.address = address
        self._command_uuid = command_uuid

    @classmethod
    async def open(
        cls,
        radio: Radio,
        address: str,
        adapter: str,
        *,
        name: str,
        find_timeout_s: float,
        uuids: tuple[str, str] = (COMMAND_UUID, NOTIFY_UUID),
        on_frame: Callable[[bytes], None],
        on_lost: Callable[[], None],
    ) -> BleakLink:
        def notified(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            on_frame(bytes(data))

        with translated(address):
            device = await radio.find(address, adapter, find_timeout_s)
            if device is None:
                raise LockUnreachableError(f"lock {address} is not heard on {adapter}")
            client = await establish_connection(
                BleakClient,
                device,
                name,
                disconnected_callback=lambda _client: on_lost(),
                max_attempts=2,
                **radio.client_options(),
            )
            try:
                await client.start_notify(uuids[1], notified)
            except BaseException:
                with suppress(BleakError, TimeoutError, EOFError, OSError):
                    await client.disconnect()
                raise
        return cls(client, address, uuids[0])

    @property
    def connected(self) -> bool:
        return bool(self._client.is_connected)

    async def send(self, frame: bytes) -> None:
        with translated(self.address):
            await self._client.write_gatt_char(self._command_uuid, frame, response=True)

    async def close(self) -> None:
        with suppress(LockError), translated(self.address):
            await self._client.disconnect()
