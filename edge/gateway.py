"""The gateway supervisor: one TaskGroup of named services sharing one store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from edge.config import GatewayConfig
from edge.link.outbox import Outbox
from edge.link.uplink import Uplink
from edge.meters.poller import BusPoller

if TYPE_CHECKING:
    from edge.door.config import DoorConfig
    from edge.door.lock import Lock
    from edge.door.service import DoorService

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def simulated_lock(door: DoorConfig) -> Lock:
    from edge.door.lock import SimulatedLock  # noqa: PLC0415 - doors are optional

    return SimulatedLock(door.id)


def start_doors(
    config: GatewayConfig,
    outbox: Outbox,
    on_stored: Callable[[], None],
    locks: Callable[[DoorConfig], Lock],
) -> list[DoorService]:
    """Build every door before anything runs: a door whose models do not verify (or whose
    gallery is unreadable) stops the start with a message that says how to fix it. The face
    stack (onnxruntime, OpenCV) is imported only by a gateway that has doors."""
    if not config.doors:
        return []
    from edge.door.service import create_door  # noqa: PLC0415

    return [
        create_door(door, locks(door), outbox, now=utc_now, on_stored=on_stored)
        for door in config.doors
    ]


async def run_gateway(
    config: GatewayConfig, *, locks: Callable[[DoorConfig], Lock] = simulated_lock
) -> None:
    """`locks` gives each door its lock (injected by tests; the BLE driver is a later issue)."""
    outbox = Outbox(config.store.path, budget_bytes=config.store.outbox_budget_bytes)
    try:
        uplink = Uplink(config, outbox, now=utc_now)
        pollers = [
            BusPoller(bus, outbox, now=utc_now, on_stored=uplink.notify) for bus in config.buses
        ]
        doors = start_doors(config, outbox, uplink.notify, locks)
        log.info(
            "[%s] gateway starting with %d bus(es) and %d door(s)",
            config.gateway_id,
            len(pollers),
            len(doors),
        )
        async with asyncio.TaskGroup() as tg:
            tg.create_task(uplink.run(), name=f"uplink-{config.gateway_id}")
            for poller, bus in zip(pollers, config.buses, strict=True):
                tg.create_task(poller.run(), name=f"poller-{bus.name}")
            for door in doors:
                tg.create_task(door.run(), name=f"door-{door.door_id}")
    finally:
        outbox.close()
