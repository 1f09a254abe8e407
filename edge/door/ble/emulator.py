"""An emulated BLE lock: a bumble GATT peripheral that speaks protocols/lock from the lock's
side, with its own key and counters, a bolt, a door sensor, a battery and fault switches.

It stands in for the hardware in tests, the demo and the bench; the gateway's driver reaches
it over real GATT through the virtual radio (edge/door/ble/virtual.py). The door sensor,
battery and tamper switch are driven by calling its methods, as a person or the environment
would act on a real lock; nothing here runs on its own timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from edge.door.ble.virtual import VirtualRadio
from protocols.lock.errors import LockAuthError, LockError, LockReplayError
from protocols.lock.frames import check_key
from protocols.lock.gatt import COMMAND_UUID, NOTIFY_UUID, SERVICE_UUID
from protocols.lock.messages import (
    LOW_BATTERY,
    Answer,
    Bolt,
    Event,
    EventKind,
    LockCommand,
    Result,
    Status,
    StatusCommand,
    decode_command,
    encode_answer,
    encode_event,
)

log = logging.getLogger(__name__)

ADVERTISING_INTERVAL_MS = 20  # the shortest legal interval: the fastest connection setup
PENDING_EVENTS = 32  # what a lock keeps while no gateway listens; the oldest go first
COUNTER_BLOCK = 256  # a real lock writes its counter to flash once per block, not per frame


class EmulatedLock:
    def __init__(
        self,
        radio: VirtualRadio,
        address: str,
        key: bytes,
        *,
        name: str = "anju-lock",
        battery: int = 100,
        auto_relock: bool = False,
    ) -> None:
        self.address = address
        self.name = name
        self.key = check_key(key)
        self.device = radio.device(name, address)
        self.bolt = Bolt.LOCKED
        self.door_open = False
        self.battery = battery
        self.last_command = 0  # the gateway's last accepted counter (kept across reboots)
        self.counter = 0  # this lock's own frames
        self.unlocks = 0  # times the bolt was driven open by a command
        self.refused: list[str] = []  # each dropped or refused frame: "auth", "frame", "stale"
        self.received: list[bytes] = []  # every command frame, as an eavesdropper records them
        # Fault switches.
        self.jam = False  # the bolt jams on its next movement
        self.drop_links = 0  # the next N commands: the lock acts, then the link drops
        self.silent = False  # acts on commands and never answers (radio deaf one way)
        # The demo's lock relocks by itself when the hold time ends, as a real one does;
        # tests leave it off and call relock() when they mean it.
        self.auto_relock = auto_relock
        self._relock: asyncio.Task[None] | None = None
        self._pending: deque[Event] = deque(maxlen=PENDING_EVENTS)
        self._notify: Characteristic[bytes] = Characteristic(
            NOTIFY_UUID, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
        )
        command: Characteristic[bytes] = Characteristic(
            COMMAND_UUID,
            Characteristic.Properties.WRITE,
            Characteristic.WRITEABLE,
            CharacteristicValue[bytes](write=self._on_write),
        )
        self.device.add_service(Service(SERVICE_UUID, [command, self._notify]))

    @property
    def status(self) -> Status:
        return Status(self.bolt, self.door_open, self.battery)

    # ---- radio -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.device.power_on()
        await self.advertise()

    async def advertise(self) -> None:
        """Back in range."""
        await self.device.start_advertising(
            auto_restart=True, advertising_interval_min=ADVERTISING_INTERVAL_MS
        )

    async def out_of_range(self) -> None:
        """Silent on the air: any link drops, and no advertising."""
        connections = list(self.device.connections.values())
        for connection in connections:
            await connection.disconnect()
        if connections:
            # bumble restarts advertising after a disconnection; let it, then stop it.
            async with asyncio.timeout(1.0):
                while not self.device.is_advertising:  # noqa: ASYNC110 - bumble emits no event
                    await asyncio.sleep(0)
        if self.device.is_advertising:
            await self.device.stop_advertising()

    async def stop(self) -> None:
        self._cancel_relock()
        if self._relock is not None:
            await asyncio.gather(self._relock, return_exceptions=True)
        await self.out_of_range()
        await self.device.power_off()

    def _cancel_relock(self) -> None:
        if self._relock is not None and not self._relock.done():
            self._relock.cancel()

    async def _relock_after(self, hold_s: float) -> None:
        await asyncio.sleep(hold_s)
        await self.relock()

    def reboot(self) -> None:
        """Power cycle: the last accepted gateway counter survives (it is written before the
        lock acts); its own counter resumes at the next block it had reserved in flash."""
        self.counter = (self.counter // COUNTER_BLOCK + 1) * COUNTER_BLOCK
        self._pending.clear()

    # ---- the world acting on the lock ------------------------------------------------------

    async def open_door(self) -> None:
        self.door_open = True
        kind = EventKind.FORCED_OPEN if self.bolt is Bolt.LOCKED else EventKind.OPENED
        await self._event(kind)

    async def close_door(self) -> None:
        self.door_open = False
        await self._event(EventKind.CLOSED)

    async def held_open(self, seconds: int) -> None:
        await self._event(EventKind.HELD_OPEN, seconds)

    async def relock(self) -> None:
        """The unlock's hold time ran out."""
        await self._move(Bolt.LOCKED)
        if self.bolt is Bolt.LOCKED:
            await self._event(EventKind.LOCKED)

    async def set_battery(self, percent: int) -> None:
        was = self.battery
        self.battery = percent
        if percent <= LOW_BATTERY < was:
            await self._event(EventKind.LOW_BATTERY)

    async def tamper(self) -> None:
        await self._event(EventKind.TAMPER)

    async def _move(self, bolt: Bolt) -> None:
        if self.jam:
            self.bolt = Bolt.JAMMED
            await self._event(EventKind.JAMMED)
        else:
            self.bolt = bolt

    async def _event(self, kind: EventKind, value: int = 0) -> None:
        self._pending.append(Event(kind, self.status, value))
        await self._flush()

    async def _flush(self) -> None:
        """Pending events go out while a gateway listens; otherwise they wait (bounded)."""
        while self._pending and self._listener() is not None:
            connection = self._listener()
            assert connection is not None
            event = self._pending.popleft()
            self.counter += 1
            frame = encode_event(self.key, self.counter, event)
            await self.device.notify_subscriber(connection, self._notify, frame)

    def _listener(self) -> Connection | None:
        subscribers = self.device.gatt_server.subscribers
        for connection in self.device.connections.values():
            cccd = subscribers.get(connection, {}).get(self._notify.handle)
            if cccd is not None and cccd[0] & 0x01:
                return connection
        return None

    # ---- commands --------------------------------------------------------------------------

    async def _on_write(self, connection: Connection, value: bytes) -> None:
        self.received.append(bytes(value))
        try:
            counter, command = decode_command(self.key, value, last_counter=self.last_command)
        except LockReplayError as exc:
            self.refused.append("stale")
            log.info("[%s] stale command %d (last %d)", self.name, exc.counter, exc.last)
            await self._answer(connection, exc.counter, Answer(Result.STALE, last_counter=exc.last))
            return
        except LockError as exc:
            # Nothing authentic to answer to: a lock keeps quiet.
            self.refused.append("auth" if isinstance(exc, LockAuthError) else "frame")
            log.info("[%s] frame dropped: %s", self.name, exc)
            return
        self.last_command = counter
        if isinstance(command, StatusCommand):
            pass
        elif isinstance(command, LockCommand):
            self._cancel_relock()
            await self._move(Bolt.LOCKED)
        else:
            await self._move(Bolt.UNLOCKED)
            if self.bolt is Bolt.UNLOCKED:
                self.unlocks += 1
                if self.auto_relock:
                    self._cancel_relock()  # a new unlock restarts the hold
                    self._relock = asyncio.create_task(
                        self._relock_after(command.hold_ds / 10), name=f"relock-{self.name}"
                    )
        if self.drop_links > 0:
            self.drop_links -= 1
            await connection.disconnect()
            return
        if self.silent:
            return
        result = Result.JAMMED if self.bolt is Bolt.JAMMED else Result.OK
        await self._answer(connection, counter, Answer(result, self.status))
        await self._flush()

    async def _answer(self, connection: Connection, reply_to: int, answer: Answer) -> None:
        self.counter += 1
        frame = encode_answer(self.key, self.counter, reply_to, answer)
        await self.device.notify_subscriber(connection, self._notify, frame)
