"""The gateway's buses and doors as running tasks, replaced one by one when the configuration
changes.

Everything a new configuration needs is built before anything running is touched, so a part
that cannot be built (an unknown profile, a door whose models do not verify) leaves every
running part as it was. Then only what changed is replaced: a bus whose settings changed gets a
new poller, started once the old one has finished its cycle and stored its readings (no reading
is lost); a bus whose only change is its interval keeps its poller, retimed; a bus or door that
did not change keeps running, so an open door stays served.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edge.config import ModbusBus
from edge.door.lock import Lock, LockService
from edge.meters.poller import BusPoller
from edge.meters.sink import OutboxSink
from edge.store.outbox import Outbox

if TYPE_CHECKING:
    from edge.access.service import AccessService
    from edge.door.config import DoorConfig
    from edge.door.service import DoorService

log = logging.getLogger(__name__)
Work = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Change:
    """What a configuration needs that is not running yet, built and not started."""

    buses: tuple[ModbusBus, ...]
    doors: tuple[DoorConfig, ...]
    pollers: dict[str, BusPoller] = field(default_factory=dict)
    retimed: dict[str, float] = field(default_factory=dict)
    new_doors: dict[str, tuple[DoorService, Lock]] = field(default_factory=dict)


class Parts:
    def __init__(
        self,
        gateway_id: str,
        outbox: Outbox,
        on_stored: Callable[[], None],
        lock_for: Callable[[DoorConfig], Lock],
        *,
        now: Callable[[], datetime],
        access: AccessService | None = None,
    ) -> None:
        self._gid = gateway_id
        self._outbox = outbox
        self._on_stored = on_stored
        self._sink = OutboxSink(outbox, on_stored=on_stored)
        self._lock_for = lock_for
        self._now = now
        self._access = access
        # Live views: the health probe and the unlock command read these as they change.
        self.pollers: list[BusPoller] = []
        self.doors: list[DoorService] = []
        self.locks: dict[str, Lock] = {}
        self._buses: dict[str, ModbusBus] = {}
        self._door_configs: dict[str, DoorConfig] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._not_started: dict[str, Work] = {}

    @property
    def buses(self) -> list[ModbusBus]:
        return list(self._buses.values())

    def prepare(self, buses: Sequence[ModbusBus], doors: Sequence[DoorConfig]) -> Change:
        """Build the pollers and doors that `buses` and `doors` add or change. Raises what
        building raises (ConfigError, ModelsMissingError, OSError); nothing runs yet."""
        change = Change(tuple(buses), tuple(doors))
        for bus in buses:
            old = self._buses.get(bus.name)
            if old == bus:
                continue
            if old is not None and old.model_copy(update={"poll_interval_s": 0.0}) == (
                bus.model_copy(update={"poll_interval_s": 0.0})
            ):
                change.retimed[bus.name] = bus.poll_interval_s
                continue
            change.pollers[bus.name] = BusPoller(bus, self._sink, now=self._now)
        changed = [door for door in doors if self._door_configs.get(door.id) != door]
        if changed:
            # The face stack is imported only by a gateway that has doors.
            from edge.door.service import create_door  # noqa: PLC0415

            for door in changed:
                lock = self._lock_for(door)
                service = create_door(
                    door,
                    lock,
                    self._outbox,
                    now=self._now,
                    on_stored=self._on_stored,
                    access=self._access,
                )
                change.new_doors[door.id] = (service, lock)
        return change

    def commit(self, change: Change) -> None:
        """Run `change`: stop what it drops or replaces, start what it brings."""
        self._commit_buses(change)
        self._commit_doors(change)

    def _commit_buses(self, change: Change) -> None:
        wanted = {bus.name: bus for bus in change.buses}
        by_name = {poller.name: poller for poller in self.pollers}
        for name in list(self._buses):
            if name not in wanted or name in change.pollers:
                by_name.pop(name).stop()  # ends after its cycle, its readings stored
                if name not in wanted:
                    log.info("[%s] bus %s removed", self._gid, name)
        for name, seconds in change.retimed.items():
            by_name[name].set_poll_interval(seconds)
        for name, poller in change.pollers.items():
            by_name[name] = poller
            previous = self._tasks.get(f"poller-{name}")
            self._start(f"poller-{name}", functools.partial(_after, previous, poller.run))
        self.pollers[:] = [by_name[bus.name] for bus in change.buses]
        self._buses = {bus.name: bus for bus in change.buses}

    def _commit_doors(self, change: Change) -> None:
        wanted = {door.id for door in change.doors}
        services = {door.door_id: door for door in self.doors}
        for door_id in list(self._door_configs):
            if door_id not in wanted or door_id in change.new_doors:
                for name in (f"door-{door_id}", f"lock-{door_id}", f"keypad-{door_id}"):
                    task = self._tasks.pop(name, None)
                    if task is not None:
                        task.cancel()
                services.pop(door_id, None)
                self.locks.pop(door_id, None)
                del self._door_configs[door_id]
        configs = {door.id: door for door in change.doors}
        for door_id, (service, lock) in change.new_doors.items():
            services[door_id] = service
            self.locks[door_id] = lock
            self._start(f"door-{door_id}", service.run)
            if isinstance(lock, LockService):
                run_lock = functools.partial(lock.run, self._outbox, self._on_stored)
                self._start(f"lock-{door_id}", run_lock)
            keypad = configs[door_id].keypad
            if keypad is not None and self._access is not None:
                from edge.door.keypad import KeypadService  # noqa: PLC0415 - keypads are optional

                entries = KeypadService(door_id, keypad, self._access, lock, now=self._now)
                self._start(f"keypad-{door_id}", entries.run)
        self.doors[:] = [services[door.id] for door in change.doors]
        self._door_configs = {door.id: door for door in change.doors}

    def _start(self, name: str, work: Work) -> None:
        if self._tg is None:  # not started yet: `start` runs it
            self._not_started[name] = work
            return
        task = self._tg.create_task(work(), name=name)
        self._tasks[name] = task
        task.add_done_callback(lambda done: self._forget(name, done))

    def _forget(self, name: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(name) is task:
            del self._tasks[name]

    def start(self, tg: asyncio.TaskGroup) -> None:
        """Run every part in `tg`; later changes start and stop theirs there too."""
        self._tg = tg
        pending, self._not_started = self._not_started, {}
        for name, work in pending.items():
            self._start(name, work)


async def _after(previous: asyncio.Task[None] | None, work: Work) -> None:
    """`work` once `previous` (the poller it replaces) has returned: one transport per port."""
    if previous is not None:
        await asyncio.wait([previous])
    await work()
