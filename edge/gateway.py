"""The gateway supervisor: one TaskGroup of named services sharing one store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from edge.access.clock import GatewayClock
from edge.access.service import AccessService
from edge.access.store import AccessStore, load_or_create_key
from edge.actions import builtin_actions
from edge.config import GatewayConfig
from edge.health import HealthProbe
from edge.parts import Parts
from edge.remote_config import RemoteConfig
from edge.store.outbox import Outbox
from edge.store.replay import ReplayMemory
from edge.store.results import ResultStore
from edge.uplink.client import Uplink
from edge.uplink.commands import CommandChannel, CommandHandler, command_key
from runtime.clock import utc_now

if TYPE_CHECKING:
    from edge.door.ble.esphome import EsphomeLocks
    from edge.door.config import DoorConfig
    from edge.door.lock import Lock

log = logging.getLogger(__name__)


def simulated_lock(door: DoorConfig) -> Lock:
    from edge.door.lock import SimulatedLock  # noqa: PLC0415 - doors are optional

    return SimulatedLock(door.id)


class ConfiguredLocks:
    """Each door's lock as its config says: the simulator, or a BLE lock (bleak imported only
    by a gateway that has one). `aclose` ends what the radios hold open (proxy connections)."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._ble: dict[str, Callable[[DoorConfig], Lock]] = {}
        self._proxies: EsphomeLocks | None = None

    def __call__(self, door: DoorConfig) -> Lock:
        if door.lock != "ble" or door.ble is None:
            return simulated_lock(door)
        radio = door.ble.radio
        if radio not in self._ble:
            self._ble[radio] = self._locks(radio)
        return self._ble[radio](door)

    def _locks(self, radio: str) -> Callable[[DoorConfig], Lock]:
        if radio == "emulated":
            from edge.door.ble.emulated import emulated_locks  # noqa: PLC0415 - demo only

            return emulated_locks(self._now)
        if radio == "esphome":
            from edge.door.ble.esphome import EsphomeLocks  # noqa: PLC0415 - proxies only

            self._proxies = EsphomeLocks(self._now)
            return self._proxies
        from edge.door.ble.driver import host_locks  # noqa: PLC0415

        return host_locks(self._now)

    async def aclose(self) -> None:
        if self._proxies is not None:
            await self._proxies.aclose()


async def run_gateway(
    config: GatewayConfig,
    *,
    locks: Callable[[DoorConfig], Lock] | None = None,
    now: Callable[[], datetime] = utc_now,
) -> None:
    """`locks` gives each door its lock (injected by tests; default: as configured);
    `now` is the wall clock (tests drive command expiry with it)."""
    gid = config.gateway_id
    key = command_key(config.commands)  # a bad key file stops the start, before anything runs
    outbox = Outbox(config.store.path, budget_bytes=config.store.outbox_budget_bytes)
    memory = ReplayMemory(config.store.path)
    results = ResultStore(config.store.path)
    access_store = AccessStore(
        config.store.path, load_or_create_key(config.store.path.with_name("access.key"))
    )
    configured = ConfiguredLocks(now)
    try:
        channel = CommandChannel(gid, results)
        access = AccessService(gid, key, access_store, outbox, GatewayClock(now))
        uplink = Uplink(config, outbox, now=now, commands=channel, access=access)
        access.on_stored, access.on_applied = uplink.notify, uplink.report_state
        # Doors and buses: a door whose models do not verify (or whose gallery is unreadable)
        # stops the start with a message that says how to fix it.
        parts = Parts(gid, outbox, uplink.notify, locks or configured, now=now, access=access)
        uplink.remote_config = remote = RemoteConfig(config, key, parts, uplink.set_link)
        remote.load()  # the configuration applied before this start, before anything runs
        uplink.health = HealthProbe(
            gid, config.store.path, parts.pollers, parts.doors, started=now(), locks=parts.locks
        )
        commands = CommandHandler(
            gid,
            key,
            memory,
            channel,
            builtin_actions(outbox, parts.locks, now=now),
            now=now,
            skew=timedelta(seconds=config.commands.clock_skew_s),
        )
        log.info(
            "[%s] gateway starting with %d bus(es) and %d door(s)",
            gid,
            len(parts.pollers),
            len(parts.doors),
        )
        async with asyncio.TaskGroup() as tg:
            tg.create_task(uplink.run(), name=f"uplink-{gid}")
            tg.create_task(commands.run(), name=f"commands-{gid}")
            tg.create_task(access.run(), name=f"access-{gid}")
            parts.start(tg)
    finally:
        outbox.close()
        memory.close()
        results.close()
        access_store.close()
        await configured.aclose()
