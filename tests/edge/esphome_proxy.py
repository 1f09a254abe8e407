"""An ESPHome Bluetooth proxy for tests: ESPHome's native API (plain-text framing, protobuf
messages from aioesphomeapi.api_pb2) on loopback, with a bumble central on the virtual radio
as its Bluetooth side.

It does what the proxy firmware does for a client: hello, device info with the proxy's feature
flags, raw advertisements it hears, connection slots, and a client's GATT requests (connect,
services, write, notify, descriptor write, disconnect) carried out on the air by its central.
So the gateway's real stack (bleak-esphome, aioesphomeapi, habluetooth) runs unchanged over a
real TCP connection to a lock that speaks real GATT. With a `psk` it speaks the firmware's
Noise_NNpsk0 encryption (responder side, from the `noise` package aioesphomeapi uses).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aioesphomeapi import BluetoothProxyFeature, api_pb2
from aioesphomeapi.core import MESSAGE_TYPE_TO_PROTO
from bleak.uuids import normalize_uuid_str
from bumble import core
from bumble.device import Connection, Peer
from bumble.hci import Address
from cryptography.exceptions import InvalidTag
from google.protobuf.message import Message
from noise.connection import NoiseConnection
from noise.exceptions import NoiseInvalidMessage

from edge.door.ble.virtual import VirtualAdapter, VirtualRadio

TYPE_OF = {cls: number for number, cls in MESSAGE_TYPE_TO_PROTO.items()}
FEATURES = (
    BluetoothProxyFeature.PASSIVE_SCAN
    | BluetoothProxyFeature.ACTIVE_CONNECTIONS
    | BluetoothProxyFeature.REMOTE_CACHING
    | BluetoothProxyFeature.RAW_ADVERTISEMENTS
)
SLOTS = 3  # connection slots, as the firmware's default
REQ = api_pb2.BluetoothDeviceRequestType
CONNECTS = (
    REQ.Value("BLUETOOTH_DEVICE_REQUEST_TYPE_CONNECT_V3_WITH_CACHE"),
    REQ.Value("BLUETOOTH_DEVICE_REQUEST_TYPE_CONNECT_V3_WITHOUT_CACHE"),
)
DISCONNECT = REQ.Value("BLUETOOTH_DEVICE_REQUEST_TYPE_DISCONNECT")
ERROR_NOT_CONNECTED = 0x100  # ESP_GATT_NOT_CONNECTED
ERROR_CONNECT_FAILED = 0x85  # ESP_GATT_ERROR


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


async def _read_varint(reader: asyncio.StreamReader) -> int:
    value = shift = 0
    while True:
        byte = (await reader.readexactly(1))[0]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value


def _mac_int(address: str) -> int:
    return int(address.replace(":", ""), 16)


def _mac_str(value: int) -> str:
    raw = f"{value:012X}"
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))


def _split_uuid(uuid: core.UUID) -> list[int]:
    value = int(normalize_uuid_str(uuid.to_hex_str("-")).replace("-", ""), 16)
    return [value >> 64, value & ((1 << 64) - 1)]


class _Session:
    """One API client's TCP connection: plain-text frames, or Noise once `noise` is set."""

    def __init__(self, proxy: EsphomeProxyEmulator, writer: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.writer = writer
        self.noise: NoiseConnection | None = None
        self.advertisements = False
        self.slots = False

    def send(self, message: Message) -> None:
        if self.writer.is_closing():
            return
        payload = message.SerializeToString()
        kind = TYPE_OF[type(message)]
        if self.noise is None:
            self.writer.write(b"\x00" + _varint(len(payload)) + _varint(kind) + payload)
            return
        header = kind.to_bytes(2, "big") + len(payload).to_bytes(2, "big")
        self.frame(self.noise.encrypt(header + payload))

    def frame(self, body: bytes) -> None:
        self.writer.write(b"\x01" + len(body).to_bytes(2, "big") + body)

    async def read(self, reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
        """The next message (type, payload); None for a frame this proxy does not speak."""
        preamble = await reader.readexactly(1)
        if self.noise is None:
            if preamble != b"\x00":
                return None
            size = await _read_varint(reader)
            kind = await _read_varint(reader)
            return kind, await reader.readexactly(size)
        body = await _noise_frame(reader, preamble)
        plain = self.noise.decrypt(body)
        return int.from_bytes(plain[:2], "big"), plain[4:]


async def _noise_frame(reader: asyncio.StreamReader, preamble: bytes) -> bytes:
    if preamble != b"\x01":
        raise ConnectionError("not a Noise frame")
    size = int.from_bytes(await reader.readexactly(2), "big")
    return await reader.readexactly(size)


class EsphomeProxyEmulator:
    """`await start()`, then point an EsphomeRadio at 127.0.0.1:`port`."""

    def __init__(
        self,
        radio: VirtualRadio,
        *,
        name: str,
        mac: str,
        rssi: int = -60,
        psk: bytes | None = None,
    ) -> None:
        self.radio = radio
        self.psk = psk  # the API encryption key: Noise_NNpsk0 as the firmware, or plain text
        self.rssi = rssi  # how loud this proxy hears every lock (the radio has no distances)
        self.name = name
        self.mac = mac
        self.port = 0
        self.adapter: VirtualAdapter | None = None
        self.sessions: list[_Session] = []
        self.links: dict[int, tuple[Connection, Peer, _Session]] = {}
        self.drop_tcp_on_write = 0  # the next N GATT writes: the proxy's TCP link dies instead
        self.writes = 0  # GATT writes carried to a lock
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.adapter = await self.radio.adapter(f"proxy-{self.name}", self.mac)
        device = self.adapter.device
        device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await device.start_scanning(filter_duplicates=False)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Ends the API server, its connections and the radio; a second call does nothing
        (a test that powers a proxy off still stops it in its `finally`)."""
        server, self._server = self._server, None
        adapter, self.adapter = self.adapter, None
        if server is not None:
            server.close()
        self.drop_clients()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        if adapter is not None:
            await adapter.close()

    def drop_clients(self) -> None:
        """The proxy's Wi-Fi drops: every API connection ends without a goodbye."""
        for session in list(self.sessions):
            session.writer.transport.abort()

    # ---- the API side ----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, writer)
        self.sessions.append(session)
        self._tasks.add(task := asyncio.current_task())  # type: ignore[arg-type]
        try:
            if self.psk is not None and not await self._handshake(session, reader):
                return
            while True:
                message_in = await session.read(reader)
                if message_in is None:
                    return  # a Noise client; this proxy speaks plain text
                kind, payload = message_in
                cls = MESSAGE_TYPE_TO_PROTO.get(kind)
                if cls is None:
                    continue
                message = cls()
                message.ParseFromString(payload)
                await self._handle(session, message)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, NoiseInvalidMessage):
            pass
        finally:
            self.sessions.remove(session)
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.transport.abort()
            await self._drop_links(session)

    async def _handshake(self, session: _Session, reader: asyncio.StreamReader) -> bool:
        """The firmware's side of Noise_NNpsk0_25519_ChaChaPoly_SHA256: the client's empty
        hello frame and its handshake message, our hello (protocol, name, MAC) and answer."""
        assert self.psk is not None
        await _noise_frame(reader, await reader.readexactly(1))  # the client's hello
        handshake = await _noise_frame(reader, await reader.readexactly(1))
        noise = NoiseConnection.from_name(b"Noise_NNpsk0_25519_ChaChaPoly_SHA256")
        noise.set_as_responder()
        noise.set_psks(self.psk)
        noise.set_prologue(b"NoiseAPIInit\x00\x00")
        noise.start_handshake()
        session.frame(b"\x01" + self.name.encode() + b"\x00" + self.mac.encode() + b"\x00")
        try:
            noise.read_message(handshake[1:])
        except (NoiseInvalidMessage, InvalidTag):
            session.frame(b"\x01Handshake MAC failure")
            await session.writer.drain()
            return False
        session.frame(b"\x00" + noise.write_message())
        session.noise = noise
        return True

    async def _handle(self, session: _Session, message: Any) -> None:
        pb = api_pb2
        if isinstance(message, pb.HelloRequest):
            session.send(
                pb.HelloResponse(
                    api_version_major=1,
                    api_version_minor=10,
                    server_info="emulated",
                    name=self.name,
                )
            )
        elif isinstance(message, pb.PingRequest):
            session.send(pb.PingResponse())
        elif isinstance(message, pb.DisconnectRequest):
            session.send(pb.DisconnectResponse())
            await session.writer.drain()
            session.writer.close()
        elif isinstance(message, pb.DeviceInfoRequest):
            session.send(
                pb.DeviceInfoResponse(
                    name=self.name,
                    mac_address=self.mac,
                    bluetooth_mac_address=self.mac,
                    esphome_version="2025.1.0",
                    model="esp32-emulated",
                    bluetooth_proxy_feature_flags=int(FEATURES),
                )
            )
        elif isinstance(message, pb.SubscribeBluetoothLEAdvertisementsRequest):
            session.advertisements = True
        elif isinstance(message, pb.UnsubscribeBluetoothLEAdvertisementsRequest):
            session.advertisements = False
        elif isinstance(message, pb.SubscribeBluetoothConnectionsFreeRequest):
            session.slots = True
            self._send_slots()
        elif isinstance(message, pb.BluetoothDeviceRequest):
            if message.request_type in CONNECTS:
                await self._connect(session, message.address)
            elif message.request_type == DISCONNECT:
                await self._disconnect(message.address)
        elif isinstance(message, pb.BluetoothGATTGetServicesRequest):
            await self._services(session, message.address)
        elif isinstance(message, pb.BluetoothGATTWriteRequest):
            if self.drop_tcp_on_write > 0:
                self.drop_tcp_on_write -= 1
                session.writer.transport.abort()
                return
            await self._write(session, message.address, message.handle, message.data)
            self.writes += 1
        elif isinstance(message, pb.BluetoothGATTWriteDescriptorRequest):
            await self._write(session, message.address, message.handle, message.data)
        elif isinstance(message, pb.BluetoothGATTNotifyRequest):
            await self._notify(session, message.address, message.handle, message.enable)

    def _send_slots(self) -> None:
        allocated = list(self.links)
        reply = api_pb2.BluetoothConnectionsFreeResponse(
            free=SLOTS - len(allocated), limit=SLOTS, allocated=allocated
        )
        for session in self.sessions:
            if session.slots:
                session.send(reply)

    # ---- the Bluetooth side ----------------------------------------------------------------

    def _on_advertisement(self, advertisement: Any) -> None:
        address: Address = advertisement.address
        raw = api_pb2.BluetoothLERawAdvertisement(
            address=_mac_int(address.to_string(False)),
            rssi=self.rssi,
            address_type=0 if address.is_public else 1,
            data=advertisement.data_bytes,
        )
        for session in self.sessions:
            if session.advertisements:
                session.send(api_pb2.BluetoothLERawAdvertisementsResponse(advertisements=[raw]))

    async def _connect(self, session: _Session, address: int) -> None:
        assert self.adapter is not None
        answer = api_pb2.BluetoothDeviceConnectionResponse
        if address in self.links:
            session.send(answer(address=address, connected=True, mtu=23))
            return
        if len(self.links) >= SLOTS or not self.radio.advertising(_mac_str(address)):
            session.send(answer(address=address, connected=False, error=ERROR_CONNECT_FAILED))
            return
        try:
            connection = await self.adapter.device.connect(Address(_mac_str(address)))
        except core.BaseBumbleError:
            session.send(answer(address=address, connected=False, error=ERROR_CONNECT_FAILED))
            return
        self.links[address] = (connection, Peer(connection), session)

        def lost(_reason: int) -> None:
            if self.links.pop(address, None) is not None:
                for each in self.sessions:
                    each.send(answer(address=address, connected=False, error=ERROR_NOT_CONNECTED))
                self._send_slots()

        connection.on(connection.EVENT_DISCONNECTION, lost)
        self._send_slots()
        session.send(answer(address=address, connected=True, mtu=int(connection.att_mtu)))

    async def _disconnect(self, address: int) -> None:
        link = self.links.get(address)
        if link is not None:
            with contextlib.suppress(core.BaseBumbleError):
                await link[0].disconnect()

    async def _drop_links(self, session: _Session) -> None:
        """A proxy whose API client is gone drops that client's links, as the firmware does."""
        for address, link in list(self.links.items()):
            if link[2] is session:
                await self._disconnect(address)

    def _peer(self, session: _Session, address: int, handle: int) -> Peer | None:
        link = self.links.get(address)
        if link is None:
            session.send(
                api_pb2.BluetoothGATTErrorResponse(
                    address=address, handle=handle, error=ERROR_NOT_CONNECTED
                )
            )
            return None
        return link[1]

    async def _services(self, session: _Session, address: int) -> None:
        peer = self._peer(session, address, 0)
        if peer is None:
            return
        await peer.discover_services()
        services = []
        for service in peer.services:
            await peer.discover_characteristics(service=service)
            characteristics = []
            for characteristic in service.characteristics:
                await peer.discover_descriptors(characteristic=characteristic)
                characteristics.append(
                    api_pb2.BluetoothGATTCharacteristic(
                        uuid=_split_uuid(characteristic.uuid),
                        handle=characteristic.handle,
                        properties=int(characteristic.properties),
                        descriptors=[
                            api_pb2.BluetoothGATTDescriptor(
                                uuid=_split_uuid(d.type), handle=d.handle
                            )
                            for d in characteristic.descriptors
                        ],
                    )
                )
            services.append(
                api_pb2.BluetoothGATTService(
                    uuid=_split_uuid(service.uuid),
                    handle=service.handle,
                    characteristics=characteristics,
                )
            )
        session.send(api_pb2.BluetoothGATTGetServicesResponse(address=address, services=services))
        session.send(api_pb2.BluetoothGATTGetServicesDoneResponse(address=address))

    async def _write(self, session: _Session, address: int, handle: int, data: bytes) -> None:
        peer = self._peer(session, address, handle)
        if peer is None:
            return
        try:
            await peer.write_value(handle, data, with_response=True)
        except core.BaseBumbleError:
            session.send(
                api_pb2.BluetoothGATTErrorResponse(
                    address=address, handle=handle, error=ERROR_NOT_CONNECTED
                )
            )
            return
        session.send(api_pb2.BluetoothGATTWriteResponse(address=address, handle=handle))

    async def _notify(self, session: _Session, address: int, handle: int, enable: bool) -> None:
        """Registers for the characteristic's notifications; the client writes its CCCD
        itself (REMOTE_CACHING), as with the firmware."""
        peer = self._peer(session, address, handle)
        if peer is None:
            return
        client = peer.gatt_client
        if enable:

            def deliver(value: bytes) -> None:
                session.send(
                    api_pb2.BluetoothGATTNotifyDataResponse(
                        address=address, handle=handle, data=value
                    )
                )

            client.notification_subscribers[handle] = {deliver}
        else:
            client.notification_subscribers.pop(handle, None)
        session.send(api_pb2.BluetoothGATTNotifyResponse(address=address, handle=handle))
