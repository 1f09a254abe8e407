"""A virtual radio for tests, the demo and the bench: bumble's in-process link between
emulated peripherals (bumble GATT servers) and gateway adapters, plus a bleak backend that
drives a bumble central, so the driver's bleak code runs unchanged against an emulated lock.

Only the radio is virtual: the bytes crossing it are real ATT/GATT PDUs from bumble's host and
controller. A peripheral is reachable only while it advertises (as a real central can only
connect to what it hears); a dropped link reaches bleak as a disconnection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bleak.uuids import normalize_uuid_str
from bumble import core, gatt_client
from bumble.controller import Controller
from bumble.device import Connection, Device, Peer
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

# bumble's virtual controller answers a connect to a silent address by waiting forever; the
# backend looks for the advertiser first, like BlueZ refusing a device it has not seen.
SCAN_STEP_S = 0.005  # how often a scan looks at the air; advertising intervals are >= 20 ms
_PROPERTY_NAMES = {
    0x01: "broadcast",
    0x02: "read",
    0x04: "write-without-response",
    0x08: "write",
    0x10: "notify",
    0x20: "indicate",
    0x40: "authenticated-signed-writes",
    0x80: "extended-properties",
}


class VirtualRadio:
    """The air: every device made here hears every other."""

    def __init__(self) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self.adapters: dict[str, VirtualAdapter] = {}

    def device(self, name: str, address: str) -> Device:
        controller = Controller(name, link=self.link, public_address=address)
        host = Host(controller, AsyncPipeSink(controller))
        return Device(name=name, address=Address(address), host=host)

    def advertising(self, address: str) -> bool:
        target = Address(address).address_bytes
        for controller in self.link.controllers:
            legacy = controller.le_legacy_advertiser
            if legacy.enabled and legacy.address.address_bytes == target:
                return True
            if any(
                s.enabled and s.address is not None and s.address.address_bytes == target
                for s in controller.advertising_sets.values()
            ):
                return True
        return False

    async def adapter(self, name: str, address: str) -> VirtualAdapter:
        device = self.device(name, address)
        await device.power_on()
        adapter = self.adapters[name] = VirtualAdapter(self, device)
        return adapter

    # The driver's Radio seam (edge/door/ble/link.py).

    async def find(self, address: str, adapter: str, timeout: float) -> BLEDevice | None:  # noqa: ASYNC109
        """Listens up to `timeout` for the address to advertise (a lock that just dropped a
        link advertises again a moment later)."""
        if adapter not in self.adapters:
            return None
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        while not self.advertising(address):
            if loop.time() >= until:
                return None
            await asyncio.sleep(SCAN_STEP_S)
        return self.adapters[adapter].ble_device(address)

    def client_options(self) -> dict[str, Any]:
        return {"backend": BumbleBleakClient}


class VirtualAdapter:
    """A gateway's Bluetooth adapter on the virtual radio (a bumble central)."""

    def __init__(self, radio: VirtualRadio, device: Device) -> None:
        self.radio = radio
        self.device = device

    def ble_device(self, address: str, name: str | None = None) -> BLEDevice:
        """What a scan on this adapter would have found; bleak connects with it."""
        return BLEDevice(address, name, details=self)

    async def close(self) -> None:
        for connection in list(self.device.connections.values()):
            await connection.disconnect()
        await self.device.power_off()


class BumbleBleakClient(BaseBleakClient):
    """bleak's client interface over a VirtualAdapter: pass `backend=BumbleBleakClient` and a
    BLEDevice from `VirtualAdapter.ble_device`."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        details = getattr(address_or_ble_device, "details", None)
        if not isinstance(details, VirtualAdapter):
            raise BleakError("the bumble backend needs a BLEDevice from a VirtualAdapter")
        self._adapter = details
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        return self.address

    @property
    def mtu_size(self) -> int:
        return 23 if self._connection is None else int(self._connection.att_mtu)

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        timeout = float(kwargs.get("timeout", self._timeout))
        if not self._adapter.radio.advertising(self.address):
            raise BleakDeviceNotFoundError(
                self.address, f"Device with address {self.address} was not found."
            )
        try:
            connection = await asyncio.wait_for(
                self._adapter.device.connect(Address(self.address), timeout=None), timeout
            )
        except core.BaseBumbleError as exc:
            raise BleakError(f"{self.address}: connect failed: {exc}") from exc
        self._connection = connection
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        peer = Peer(connection)
        self._peer = peer
        try:
            await peer.discover_services()
            for service in peer.services:
                await peer.discover_characteristics(service=service)
                for characteristic in service.characteristics:
                    await peer.discover_descriptors(characteristic=characteristic)
        except core.BaseBumbleError as exc:
            raise BleakError(f"{self.address}: service discovery failed: {exc}") from exc
        self.services = self._collect(peer)

    def _collect(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        mtu = self.mtu_size
        for proxy in peer.services:
            service = BleakGATTService(proxy, proxy.handle, _uuid(proxy.uuid))
            collection.add_service(service)
            for char_proxy in proxy.characteristics:
                names = [n for bit, n in _PROPERTY_NAMES.items() if char_proxy.properties & bit]
                characteristic = BleakGATTCharacteristic(
                    char_proxy,
                    char_proxy.handle,
                    _uuid(char_proxy.uuid),
                    cast(Any, names),
                    lambda: mtu - 3,
                    service,
                )
                collection.add_characteristic(characteristic)
                for desc in char_proxy.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(desc, desc.handle, _uuid(desc.type), characteristic)
                    )
        return collection

    def _on_disconnection(self, _reason: int) -> None:
        self._connection = None
        self._peer = None
        self._subscribers.clear()
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    def _need_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError(f"{self.address}: not connected")
        return self._peer

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            await connection.disconnect()
        except core.BaseBumbleError as exc:
            raise BleakError(f"{self.address}: disconnect failed: {exc}") from exc

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise BleakError("the bumble backend does not pair")

    async def unpair(self) -> None:
        raise BleakError("the bumble backend does not pair")

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return bytearray(await self._call(self._need_peer().read_value(characteristic.obj)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return bytearray(await self._call(self._need_peer().read_value(descriptor.obj)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._need_peer()
        await self._call(peer.write_value(characteristic.obj, bytes(data), response))

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        await self._call(self._need_peer().write_value(descriptor.obj, bytes(data), True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        proxy: gatt_client.CharacteristicProxy[bytes] = characteristic.obj
        self._subscribers[characteristic.handle] = deliver
        await self._call(self._need_peer().subscribe(proxy, deliver))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        deliver = self._subscribers.pop(characteristic.handle, None)
        await self._call(self._need_peer().unsubscribe(characteristic.obj, deliver))

    async def _call(self, operation: Any) -> Any:
        """bumble's errors in bleak's terms, as a platform backend reports them."""
        try:
            return await operation
        except core.BaseBumbleError as exc:
            raise BleakError(f"{self.address}: {exc}") from exc
        except asyncio.CancelledError:
            # bumble cancels a pending ATT request when the link drops under it
            task = asyncio.current_task()
            if self._connection is None and task is not None and not task.cancelling():
                raise BleakError("disconnected during the request") from None
            raise


def _uuid(uuid: core.UUID) -> str:
    return normalize_uuid_str(uuid.to_hex_str("-"))
