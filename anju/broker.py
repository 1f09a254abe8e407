"""The embedded MQTT broker (amqtt) for the demo and tests; production uses Mosquitto or EMQX."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from amqtt.broker import Broker

log = logging.getLogger(__name__)


class _DropShutdownCancellation(logging.Filter):
    """amqtt logs its own broadcast task's cancellation at shutdown as an ERROR with a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, asyncio.CancelledError)


class _ClosingBroker(Broker):  # type: ignore[misc]  # amqtt is untyped
    """amqtt 0.12 leaves an accepted socket open when the client goes before its CONNECT (a
    port probe, a cancelled connect) or when a connection outlives shutdown; the garbage
    collector then closed it, with a ResourceWarning in whichever test was running. Every
    connection's socket is closed when its handling ends, and all of them at shutdown."""

    def __init__(self, config: dict[str, object]) -> None:
        super().__init__(config)
        self._writers: set[asyncio.StreamWriter] = set()

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        self._writers.add(writer)
        try:
            await super().stream_connected(reader, writer, listener_name)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def shutdown(self) -> None:
        try:
            await super().shutdown()
        finally:
            for writer in list(self._writers):
                writer.close()


def broker_config(host: str, port: int, database_url: str | None = None) -> dict[str, object]:
    """Anonymous without a registry (development, tests of other things); with one, every
    client logs in as a gateway or service account and touches only its topics."""
    plugins: dict[str, object] = {
        "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
    }
    if database_url is not None:
        plugins = {"anju.broker_auth.RegistryAuthPlugin": {"database_url": database_url}}
    return {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}}, "plugins": plugins}


@asynccontextmanager
async def embedded_broker(
    host: str = "127.0.0.1", port: int = 18830, *, database_url: str | None = None
) -> AsyncIterator[Broker]:
    amqtt_log = logging.getLogger("amqtt.broker")
    if not any(isinstance(f, _DropShutdownCancellation) for f in amqtt_log.filters):
        amqtt_log.addFilter(_DropShutdownCancellation())
    broker = _ClosingBroker(broker_config(host, port, database_url))
    await broker.start()
    log.info(
        "embedded MQTT broker listening on mqtt://%s:%d (%s)",
        host,
        port,
        "logins from the registry" if database_url else "anonymous",
    )
    try:
        yield broker
    finally:
        await broker.shutdown()


async def serve_broker(host: str, port: int, database_url: str | None = None) -> None:
    async with embedded_broker(host, port, database_url=database_url):
        await asyncio.Event().wait()
