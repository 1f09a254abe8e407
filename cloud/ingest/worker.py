"""The ingest worker: subscribe to every gateway's telemetry, store, then acknowledge.

The ack goes out only after the commit, so a gateway never deletes what we have not stored.
Bad input is quarantined with its reason and never stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiomqtt
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from cloud.config import Settings
from cloud.ingest.store import UnknownGatewayError, quarantine, store_telemetry
from protocols.mqtt import messages as msg
from protocols.mqtt.topics import Kind, TopicError, parse, subscription, topic
from protocols.mqtt.url import parse_broker_url

log = logging.getLogger(__name__)

DB_RETRY_S = 1.0  # a database blip: retry the same message, ack nothing until stored


def utc_now() -> datetime:
    return datetime.now(UTC)


def decode_telemetry(topic_name: str, raw: bytes) -> msg.Telemetry:
    parsed = parse(topic_name)
    body = msg.decode(msg.Telemetry, raw)
    if body.gateway_id != parsed.gateway_id:
        raise msg.MessageError("invalid", "gateway_id does not match the topic")
    return body


class IngestWorker:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Any],
        *,
        now: Callable[[], datetime] = utc_now,
        worker_id: str | None = None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._now = now
        # Unique by default: two workers with one MQTT client id would disconnect each other.
        self._worker_id = worker_id or f"ingest-{uuid.uuid4().hex[:8]}"
        self.counters: dict[str, int] = {"received": 0, "stored": 0, "rejected": 0}
        self.ready = asyncio.Event()

    def _client(self) -> aiomqtt.Client:
        address = parse_broker_url(self._settings.mqtt_url)
        v5 = self._settings.mqtt_protocol == "5"
        return aiomqtt.Client(
            hostname=address.host,
            port=address.port,
            username=self._settings.mqtt_username or address.username,
            password=self._settings.mqtt_password or address.password,
            identifier=f"anju-{self._worker_id}",
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            tls_context=ssl.create_default_context() if address.tls else None,
        )

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                async with self._client() as client:
                    delay = 0.5
                    await client.subscribe(subscription(Kind.TELEMETRY), qos=1)
                    self.ready.set()
                    log.info("[%s] subscribed to %s", self._worker_id, self._settings.mqtt_url)
                    async for message in client.messages:
                        await self._handle(client, message)
            except aiomqtt.MqttError as exc:
                self.ready.clear()
                log.warning("[%s] broker connection lost (%s); retrying", self._worker_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _handle(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        self.counters["received"] += 1
        raw = message.payload if isinstance(message.payload, bytes) else b""
        received = self._now()
        try:
            body = decode_telemetry(message.topic.value, raw)
        except (TopicError, msg.MessageError) as exc:
            reason = exc.reason if isinstance(exc, msg.MessageError) else "bad_topic"
            await self._reject(message.topic.value, reason, str(exc), raw, received)
            return
        while True:
            try:
                stored_seq = await asyncio.to_thread(self._store, body, received)
                break
            except UnknownGatewayError as exc:
                await self._reject(message.topic.value, "unknown_gateway", str(exc), raw, received)
                return
            except OperationalError as exc:
                log.warning("[%s] database unavailable (%s); retrying", self._worker_id, exc.orig)
                await asyncio.sleep(DB_RETRY_S)
        self.counters["stored"] += len(body.readings)
        ack = msg.Ack(gateway_id=body.gateway_id, seq=1, ts=received, stored_seq=stored_seq)
        await client.publish(topic(body.gateway_id, Kind.ACK), msg.encode(ack), qos=1)

    def _store(self, body: msg.Telemetry, received: datetime) -> int:
        with self._sessions.begin() as session:
            return store_telemetry(session, body, received)

    async def _reject(
        self, topic_name: str, reason: str, detail: str, raw: bytes, received: datetime
    ) -> None:
        self.counters["rejected"] += 1
        log.warning("[%s] rejected %s: %s", self._worker_id, topic_name, detail)

        def write() -> None:
            with self._sessions.begin() as session:
                quarantine(
                    session,
                    topic=topic_name,
                    reason=reason,
                    detail=detail,
                    payload=raw,
                    received=received,
                )

        await asyncio.to_thread(write)
