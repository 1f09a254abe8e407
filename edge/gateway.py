"""The gateway supervisor: one TaskGroup of named services sharing one store."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from edge.config import GatewayConfig
from edge.link.outbox import Outbox
from edge.link.uplink import Uplink
from edge.meters.poller import BusPoller

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


async def run_gateway(config: GatewayConfig) -> None:
    outbox = Outbox(config.store.path, budget_bytes=config.store.outbox_budget_bytes)
    try:
        uplink = Uplink(config, outbox, now=utc_now)
        pollers = [
            BusPoller(bus, outbox, now=utc_now, on_stored=uplink.notify) for bus in config.buses
        ]
        log.info("[%s] gateway starting with %d bus(es)", config.gateway_id, len(pollers))
        async with asyncio.TaskGroup() as tg:
            tg.create_task(uplink.run(), name=f"uplink-{config.gateway_id}")
            for poller, bus in zip(pollers, config.buses, strict=True):
                tg.create_task(poller.run(), name=f"poller-{bus.name}")
    finally:
        outbox.close()
