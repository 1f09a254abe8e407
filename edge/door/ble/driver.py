"""The gateway's BLE lock driver: authenticated commands over bleak, lock events to the outbox.

Each adapter carries one lock connection at a time (adapters hold few connection slots and
fail badly when over-committed): a command waits for its adapter, takes the link over from
another lock if needed, and keeps it open afterwards, so the next unlock of the same door pays
no connection setup and the lock's events arrive as they happen. Each command has a timeout
per try and a budget of tries; a stale counter (gateway restored from a backup, counter file
lost) is corrected from the lock's authenticated answer and retried at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.door.ble.codec import AnjuCodec, LockCodec
from edge.door.ble.config import BleLockSettings
from edge.door.ble.counters import CounterFile
from edge.door.ble.link import BleakLink, Radio
from edge.door.lock import EventSink, UnlockRequest
from edge.door.pipeline import EVENT_KIND
from edge.keyfile import read_key
from protocols.lock.errors import (
    LockAuthError,
    LockError,
    LockRefusedError,
    LockReplayError,
    LockTimeoutError,
    LockUnreachableError,
)
from protocols.lock.frames import KEY_BYTES
from protocols.lock.messages import (
    MAX_HOLD_DS,
    Answer,
    Command,
    Event,
    LockCommand,
    Result,
    Status,
    StatusCommand,
    UnlockCommand,
)

if TYPE_CHECKING:
    from edge.door.config import DoorConfig

log = logging.getLogger(__name__)

EVENT_TYPE = "lock.event"
MAX_QUEUED_EVENTS = 256  # between the radio callback and the outbox writer
FIND_TIMEOUT_S = 10.0  # how long a scan listens for the lock before calling it out of range


class Adapter:
    """One radio adapter: at most one lock connection at a time, handed over in FIFO order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.mutex = asyncio.Lock()
        self.holder: BleLock | None = None


class Adapters:
    def __init__(self) -> None:
        self._by_name: dict[str, Adapter] = {}

    def get(self, name: str) -> Adapter:
        return self._by_name.setdefault(name, Adapter(name))


def load_lock_key(path: Path) -> bytes:
    """16 raw bytes, or 32 hex digits."""
    return read_key(path, KEY_BYTES, "lock key")


class BleLock:
    def __init__(
        self,
        door_id: str,
        settings: BleLockSettings,
        codec: LockCodec,
        radio: Radio,
        adapter: Adapter,
        *,
        now: Callable[[], datetime],
        counters: CounterFile | None = None,
    ) -> None:
        self.door_id = door_id
        self.settings = settings
        self.codec = codec
        self._radio = radio
        self._adapter = adapter
        self._now = now
        self.counters = counters or CounterFile(settings.counter_file)
        self._link: BleakLink | None = None
        self._waiting: tuple[int, asyncio.Future[Answer]] | None = None
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUED_EVENTS)
        self.status: Status | None = None
        self.refused: dict[str, int] = {"auth": 0, "replay": 0, "frame": 0}
        self.events_dropped = 0
        self._failing = False

    @property
    def name(self) -> str:
        return f"{self.door_id}/{self.settings.address}"

    # ---- the Lock seam ---------------------------------------------------------------------

    async def unlock(self, request: UnlockRequest) -> None:
        hold_ds = max(1, min(MAX_HOLD_DS, round(request.hold_s * 10)))
        await self.command(UnlockCommand(hold_ds))

    async def lock(self) -> None:
        await self.command(LockCommand())

    async def read_status(self) -> Status:
        answer = await self.command(StatusCommand())
        assert answer.status is not None
        return answer.status

    async def command(self, command: Command) -> Answer:
        """The lock's OK answer; LockError once the budget is spent (the last failure)."""
        async with self._adapter.mutex:
            if self._adapter.holder not in (None, self):
                await self._adapter.holder._drop_link()
            self._adapter.holder = self
            failure: LockError = LockUnreachableError(f"[{self.name}] no try made")
            tries = 0
            while tries < self.settings.attempts:
                tries += 1
                try:
                    async with asyncio.timeout(self.settings.command_timeout_s):
                        answer = await self._exchange(command)
                except _StaleError:
                    tries -= 1 if tries == 1 else 0  # one free resync per command
                    continue
                except TimeoutError:
                    failure = self._timeout_error()
                except (LockUnreachableError, LockTimeoutError) as exc:
                    failure = exc
                else:
                    self._recovered()
                    return answer
                await self._drop_link()
                log.debug("[%s] try %d failed: %s", self.name, tries, failure)
            self._failed(failure)
            raise failure

    # ---- one exchange ----------------------------------------------------------------------

    async def _exchange(self, command: Command) -> Answer:
        link = self._link
        if link is None or not link.connected:
            link = self._link = await BleakLink.open(
                self._radio,
                self.settings.address,
                self.settings.adapter,
                name=self.name,
                find_timeout_s=min(FIND_TIMEOUT_S, self.settings.command_timeout_s / 2),
                uuids=(self.codec.command_uuid, self.codec.notify_uuid),
                on_frame=self._on_frame,
                on_lost=self._on_lost,
            )
        counter = await asyncio.to_thread(self.counters.next_tx)
        answer_future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting = (counter, answer_future)
        try:
            await link.send(self.codec.command(counter, command))
            answer = await answer_future
        finally:
            self._waiting = None
            if answer_future.done() and not answer_future.cancelled():
                answer_future.exception()  # the link dropped while the write was failing
        self.status = answer.status or self.status
        if answer.result is Result.STALE:
            log.warning(
                "[%s] lock had seen command %d already; resuming above it",
                self.name,
                answer.last_counter,
            )
            self.counters.resume_after(answer.last_counter)
            raise _StaleError
        if answer.result is Result.JAMMED:
            raise LockRefusedError("jammed", f"[{self.name}] the bolt is jammed")
        if answer.result is not Result.OK:
            raise LockRefusedError(answer.result.name.lower(), f"[{self.name}] refused")
        return answer

    def _on_frame(self, data: bytes) -> None:
        """Every notification, authenticated before anything believes it."""
        waiting = self._waiting
        try:
            counter, message = self.codec.notification(
                data,
                last_counter=self.counters.rx,
                reply_to=None if waiting is None else waiting[0],
            )
        except LockReplayError as exc:
            self.refused["replay"] += 1
            log.warning("[%s] replayed notification refused: %s", self.name, exc)
            return
        except LockError as exc:
            self.refused["auth" if isinstance(exc, LockAuthError) else "frame"] += 1
            log.warning("[%s] notification refused: %s", self.name, exc)
            return
        self.counters.accept_rx(counter)
        if isinstance(message, Event):
            self.status = message.status
            self._queue_event(counter, message)
        elif waiting is not None and not waiting[1].done():
            waiting[1].set_result(message)

    def _on_lost(self) -> None:
        self._link = None
        waiting = self._waiting
        if waiting is not None and not waiting[1].done():
            waiting[1].set_exception(
                LockUnreachableError(f"[{self.name}] the link dropped during the command")
            )

    async def _drop_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    def _timeout_error(self) -> LockTimeoutError:
        hint = " (its answers do not authenticate: wrong key?)" if self.refused["auth"] else ""
        return LockTimeoutError(
            f"[{self.name}] no authentic answer in {self.settings.command_timeout_s:g} s{hint}"
        )

    def _failed(self, exc: LockError) -> None:
        if not self._failing:
            log.warning("[%s] lock failing: %s", self.name, exc)
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.info("[%s] lock answering again", self.name)
        self._failing = False

    # ---- events ----------------------------------------------------------------------------

    def _queue_event(self, counter: int, event: Event) -> None:
        payload = {
            "type": EVENT_TYPE,
            "source": self.door_id,  # the cloud lists a door's events by its code
            "door": self.door_id,
            "event": event.kind.name.lower(),
            "bolt": event.status.bolt.name.lower(),
            "door_open": event.status.door_open,
            "battery": event.status.battery,
            "value": event.value,
            "lock_counter": counter,
            "ts": self._now().isoformat(),
        }
        try:
            self._events.put_nowait(payload)
        except asyncio.QueueFull:
            self.events_dropped += 1
            log.warning("[%s] lock event dropped (queue full): %s", self.name, payload["event"])

    async def next_event(self) -> dict[str, Any]:
        return await self._events.get()

    async def run(self, events: EventSink, on_stored: Callable[[], None] = lambda: None) -> None:
        """The lock as a gateway service: polls its status (which keeps the link and collects
        queued events) and writes its events to the outbox, until cancelled."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._poll(), name=f"lock-poll-{self.door_id}")
                while True:
                    payload = await self._events.get()
                    await asyncio.to_thread(events.append, EVENT_KIND, [payload])
                    on_stored()
        finally:
            await self._drop_link()

    async def _poll(self) -> None:
        while True:
            with suppress(LockError):  # logged once by command(); the next poll tries again
                await self.read_status()
            await asyncio.sleep(self.settings.poll_s)


def host_locks(now: Callable[[], datetime]) -> Callable[[DoorConfig], BleLock]:
    """BLE locks on this host's adapters (BlueZ), sharing one queue per adapter."""
    from edge.door.ble.link import HostRadio  # noqa: PLC0415 - scans only when asked

    adapters, radio = Adapters(), HostRadio()

    def build(door: DoorConfig) -> BleLock:
        assert door.ble is not None  # the config ties `lock: ble` to a `ble:` block
        codec = AnjuCodec(load_lock_key(door.ble.key_file))
        return BleLock(door.id, door.ble, codec, radio, adapters.get(door.ble.adapter), now=now)

    return build


class _StaleError(Exception):
    """The lock refused our counter as stale and told us where to resume."""
