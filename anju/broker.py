"""The embedded MQTT broker (amqtt) for the demo and tests; production uses Mosquitto or EMQX."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from amqtt.broker import Broker

log = logging.getLogger(__name__)


def broker_config(host: str, port: int) -> dict[str, object]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


@asynccontextmanager
async def embedded_broker(host: str = "127.0.0.1", port: int = 18830) -> AsyncIterator[Broker]:
    broker = Broker(broker_config(host, port))
    await broker.start()
    log.info("embedded MQTT broker listening on mqtt://%s:%d", host, port)
    try:
        yield broker
    finally:
        await broker.shutdown()


async def serve_broker(host: str, port: int) -> None:
    async with embedded_broker(host, port):
        await asyncio.Event().wait()
