"""ESPHome Bluetooth proxies as the driver's radio: one gateway reaches locks on every floor.

Each proxy is an ESP32 on the building's network speaking ESPHome's native API (protobuf over
TCP, Noise-encrypted with the device's key). bleak-esphome turns each proxy connection into a
habluetooth remote scanner; the advertisements it relays land in habluetooth's manager, so
`find` returns the BLEDevice a proxy heard and `client_options()` names bleak-esphome's client,
which carries GATT over the same TCP connection. aioesphomeapi's ReconnectLogic reconnects a
proxy that dropped. Imported only by a gateway with a `radio: esphome` door.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import habluetooth
from aioesphomeapi.client import APIClient
from aioesphomeapi.core import APIConnectionError, TimeoutAPIError
from aioesphomeapi.reconnect_logic import ReconnectLogic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bleak_esphome import connect_scanner
from bleak_esphome.backend.client import ESPHomeClient, ESPHomeClientData
from bluetooth_adapters import BluetoothAdapters

from edge.door.ble import link
from edge.door.ble.codec import AnjuCodec
from edge.door.ble.config import EsphomeProxy
from edge.door.ble.driver import Adapters, BleLock, load_lock_key
from protocols.errors import ConfigError
from protocols.lock.errors import LockTimeoutError, LockUnreachableError

if TYPE_CHECKING:
    from edge.door.config import DoorConfig

log = logging.getLogger(__name__)
link.RADIO_ERRORS.setdefault(TimeoutAPIError, LockTimeoutError)
link.RADIO_ERRORS.setdefault(APIConnectionError, LockUnreachableError)

CLIENT_INFO = "anju-gateway"
PSK_BYTES = 32
PSK_FILE_MAX = 256  # its base64 is 44 characters; room for spaces and a line end


def load_noise_psk(proxy: EsphomeProxy) -> str | None:
    """The proxy's API encryption key as aioesphomeapi takes it (base64 of 32 bytes)."""
    if proxy.noise_psk_file is None:
        return None
    try:
        with proxy.noise_psk_file.open("rb") as fh:  # at most a key's worth: not /dev/zero
            raw = fh.read(PSK_FILE_MAX + 1)
        key = b"" if len(raw) > PSK_FILE_MAX else base64.b64decode(raw.strip(), validate=True)
    except OSError as exc:
        raise ConfigError(f"proxy key {proxy.noise_psk_file}: {exc.strerror}") from None
    except (UnicodeDecodeError, binascii.Error):
        key = b""
    if len(key) != PSK_BYTES:
        raise ConfigError(f"proxy key {proxy.noise_psk_file}: expected {PSK_BYTES} bytes in base64")
    return base64.b64encode(key).decode("ascii")


class _NoAdapters(BluetoothAdapters):
    """The manager hears through proxies only; this host's adapters are HostRadio's."""

    async def refresh(self) -> None:
        return None

    @property
    def history(self) -> dict[str, Any]:
        return {}

    @property
    def adapters(self) -> dict[str, Any]:
        return {}

    @property
    def default_adapter(self) -> str:
        return "esphome"


class _Manager(habluetooth.BluetoothManager):
    def _discover_service_info(self, service_info: habluetooth.BluetoothServiceInfoBleak) -> None:
        """Discovery is the driver's `find`, not a callback."""


def _manager() -> habluetooth.BluetoothManager:
    """habluetooth's process-wide manager; made here (without patching bleak, as its
    async_setup would) when none exists."""
    try:
        return habluetooth.get_manager()
    except RuntimeError:
        manager = _Manager(bluetooth_adapters=_NoAdapters())
        habluetooth.set_manager(manager)
        return manager


class _Proxy:
    """One proxy's API connection, kept up by ReconnectLogic, and its scanner while up."""

    def __init__(self, settings: EsphomeProxy, psk: str | None, on_ready: asyncio.Event) -> None:
        self.settings = settings
        self.client = APIClient(
            address=settings.host,
            port=settings.port,
            password=None,
            noise_psk=psk,
            client_info=CLIENT_INFO,
        )
        self.data: ESPHomeClientData | None = None
        self._on_ready = on_ready
        self._undo: list[Any] = []
        self._logic = ReconnectLogic(
            client=self.client,
            on_connect=self._connected,
            on_disconnect=self._disconnected,
            name=None,
            zeroconf_wake=False,
        )

    @property
    def source(self) -> str | None:
        scanner = None if self.data is None else self.data.scanner
        return None if scanner is None else scanner.source

    async def start(self) -> None:
        await self._logic.start()

    async def stop(self) -> None:
        await self._logic.stop()
        await self.client.disconnect()
        self._teardown()

    async def _connected(self) -> None:
        info = await self.client.device_info()
        data = connect_scanner(self.client, info, True)
        assert data.scanner is not None  # connect_scanner always makes one
        self._undo = [
            data.scanner.async_setup(),
            _manager().async_register_scanner(data.scanner),
        ]
        self.data = data
        log.info("ESPHome proxy %s (%s) connected", info.name, self.settings.host)
        self._on_ready.set()

    async def _disconnected(self, expected: bool) -> None:
        log.info("ESPHome proxy %s disconnected", self.settings.host)
        self._teardown()

    def _teardown(self) -> None:
        """bleak-esphome's contract (connect_scanner): unavailable first, then the clients'
        disconnect callbacks, then the scanner out of the manager."""
        data, self.data = self.data, None
        undo, self._undo = self._undo, []
        if data is not None:
            data.bluetooth_device.async_set_unavailable()
            for callback in list(data.disconnect_callbacks):
                callback()
            data.disconnect_callbacks.clear()
        for step in undo:
            step()


class EsphomeRadio:
    """The driver's Radio seam (edge/door/ble/link.py) over ESPHome Bluetooth proxies."""

    def __init__(self, proxies: Sequence[EsphomeProxy]) -> None:
        self._settings = tuple(proxies)
        self._keys = [load_noise_psk(p) for p in self._settings]  # a bad key fails the start
        self._proxies: list[_Proxy] = []
        self._heard = asyncio.Event()  # set by every advertisement callback and connect
        self._started = asyncio.Lock()

    async def start(self) -> None:
        async with self._started:
            if self._proxies:
                return
            _manager()
            self._proxies = [
                _Proxy(settings, psk, self._heard)
                for settings, psk in zip(self._settings, self._keys, strict=True)
            ]
            for proxy in self._proxies:
                await proxy.start()

    async def close(self) -> None:
        proxies, self._proxies = self._proxies, []
        for proxy in proxies:
            await proxy.stop()

    def proxy(self, source: str) -> ESPHomeClientData | None:
        """The proxy with this Bluetooth address, while its API connection is up."""
        for proxy in self._proxies:
            data = proxy.data
            if (
                proxy.source == source
                and data is not None
                and data.bluetooth_device.available
                and data.client.is_connected  # a dropped one is down before its callback runs
            ):
                return data
        return None

    def _device(self, address: str) -> BLEDevice | None:
        """The lock as the manager last heard it through a proxy that is connected now."""
        device = _manager().async_ble_device_from_address(address.upper(), True)
        if device is None or self.proxy(device.details.get("source", "")) is None:
            return None
        return BLEDevice(device.address, device.name, {**device.details, "anju_radio": self})

    async def find(self, address: str, adapter: str, timeout: float) -> BLEDevice | None:  # noqa: ASYNC109 - the scan's own bound
        await self.start()
        manager = _manager()

        def heard(_info: habluetooth.BluetoothServiceInfoBleak) -> None:
            self._heard.set()

        unsubscribe = manager.async_register_advertisement_callback(heard, address.upper())
        try:
            async with asyncio.timeout(timeout):
                while (device := self._device(address)) is None:
                    self._heard.clear()
                    await self._heard.wait()
                return device
        except TimeoutError:
            return None
        finally:
            unsubscribe()

    def client_options(self) -> dict[str, Any]:
        return {"backend": EsphomeBleakClient}


class EsphomeBleakClient(ESPHomeClient):
    """bleak-esphome's client on the proxy that heard the device, as that proxy's connection
    is now (a proxy that reconnected since `find` is a new connection)."""

    def __init__(self, address_or_ble_device: BLEDevice | str, *args: Any, **kwargs: Any) -> None:
        if not isinstance(address_or_ble_device, BLEDevice):
            raise BleakError("the ESPHome backend needs the BLEDevice a proxy heard")
        details = address_or_ble_device.details
        data = details["anju_radio"].proxy(details["source"])
        if data is None:
            raise BleakError(f"proxy {details['source']} is not connected")
        super().__init__(address_or_ble_device, *args, client_data=data, **kwargs)


class EsphomeLocks:
    """Like driver.host_locks, through ESPHome proxies: doors that list the same proxies share
    one radio, and each proxy list is one adapter for the one-connection rule. The radios hold
    API connections that reconnect on their own, so the gateway closes them when it stops."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._adapters = Adapters()
        self._radios: dict[tuple[EsphomeProxy, ...], EsphomeRadio] = {}

    def __call__(self, door: DoorConfig) -> BleLock:
        assert door.ble is not None  # the config ties `lock: ble` to a `ble:` block
        proxies = door.ble.proxies
        if proxies not in self._radios:
            self._radios[proxies] = EsphomeRadio(proxies)
        adapter = self._adapters.get(",".join(f"{p.host}:{p.port}" for p in proxies))
        codec = AnjuCodec(load_lock_key(door.ble.key_file))
        return BleLock(door.id, door.ble, codec, self._radios[proxies], adapter, now=self._now)

    async def aclose(self) -> None:
        radios, self._radios = list(self._radios.values()), {}
        for radio in radios:
            await radio.close()
