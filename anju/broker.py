"""The embedded MQTT broker (amqtt) for the demo and tests; production uses Mosquitto or EMQX."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, ListenerConfig
from amqtt.errors import AMQTTError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import Session
from amqtt.utils import gen_client_id

log = logging.getLogger(__name__)


class _DropShutdownCancellation(logging.Filter):
    """amqtt logs its own broadcast task's cancellation at shutdown as an ERROR with a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, asyncio.CancelledError)


class _LoginBeforeSession(Broker):  # type: ignore[misc]  # amqtt is untyped
    """amqtt 0.12.1 (broker.py:508-580) acts on a CONNECT's client id before it checks the
    login: a clean session deletes the live session of that id (its subscriptions: the gateway
    silently stops getting commands), a persistent one gets the CONNECT's Will and login, and
    either takes the live connection over; only then is the CONNECT refused. Here the login is
    checked as soon as the CONNECT is read: a refused one is answered on its own connection and
    touches no session; an accepted one takes its session as amqtt does."""

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, *_peer: object
    ) -> tuple[BrokerProtocolHandler, Session]:
        handler, incoming = await BrokerProtocolHandler.init_from_connect(
            reader, writer, self.plugins_manager
        )
        if not await super()._authenticate(incoming, None):
            handler.attach(incoming, reader, writer)
            await handler.mqtt_connack_authorize(False)
            await writer.close()
            raise AMQTTError(f"refused the login of client {incoming.client_id!r}")
        return handler, await self._take_session(incoming)

    async def _take_session(self, incoming: Session) -> Session:
        """amqtt's own choice of session for an accepted CONNECT (its broker.py:508-538)."""
        session = incoming
        if incoming.clean_session:
            if incoming.client_id:
                await self._delete_session(incoming.client_id)
            else:
                incoming.client_id = gen_client_id()
            incoming.parent = 0
        elif incoming.client_id in self._sessions:
            session, _ = self._sessions[incoming.client_id]
            for name in ("will_flag", "will_message", "will_topic", "will_qos", "keep_alive"):
                setattr(session, name, getattr(incoming, name))
            session.username, session.password = incoming.username, incoming.password
            session.parent = 1
        else:
            incoming.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return session

    async def _authenticate(self, session: Session, listener: ListenerConfig | None) -> bool:
        """Asked again by amqtt once the session is taken: only an accepted CONNECT gets there."""
        return True


# True while amqtt answers a SUBSCRIBE (the one time MQTT sends retained messages)
_SUBSCRIBING: ContextVar[bool] = ContextVar("_SUBSCRIBING", default=False)


class _RetainedOnSubscribe(_LoginBeforeSession):
    """amqtt 0.12.1 (broker.py:599-602), at every CONNECT, sends the client the retained messages
    matching every filter that ANY client holds, unchecked by the topic plugins: a gateway got
    its own retained `up/state` for the cloud's `anju/v1/+/up/state`, and also every other
    gateway's, past the registry ACL. As MQTT (and Mosquitto) has it, retained messages are sent
    only for a SUBSCRIBE, each only if the plugins let the client receive its topic."""

    async def _handle_subscription(self, *args: Any) -> None:
        token = _SUBSCRIBING.set(True)
        try:
            await super()._handle_subscription(*args)
        finally:
            _SUBSCRIBING.reset(token)

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        handler = self._get_handler(session)
        if not _SUBSCRIBING.get() or handler is None:
            return  # the call at CONNECT
        topic_filter, qos = subscription
        sends = [
            asyncio.ensure_future(
                handler.mqtt_publish(name, m.data, min(qos, m.qos or qos), retain=True)
            )
            for name, m in list(self._retained_messages.items())
            if self._matches(name, topic_filter)
            and await self._topic_filtering(session, topic=name, action=Action.RECEIVE)
        ]
        if sends:
            await asyncio.wait(sends)


class _ClosingBroker(_RetainedOnSubscribe):
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
