"""The ingest worker: drain what the broker delivered, store it in one transaction, then ack.

Acks go out only after the commit, so a gateway never deletes what we have not stored. If the
database is unavailable the same batch is retried and nothing is acknowledged meanwhile. Bad
input is quarantined with its reason and never stops the loop: a message the wire's bounds let
through and the database still refuses (whatever the error) is found by storing the batch's
messages one by one, and quarantined alone (reason `error`). A failure that escapes all that
restarts the worker after a backoff; it counts as down until it has subscribed again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

import aiomqtt
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from cloud.commands import service as commands
from cloud.config import Settings
from cloud.ingest import health as fleet_health
from cloud.ingest.store import Batch, StoreResult, store_batch
from cloud.metrics import IngestMetrics
from cloud.mqtt import cloud_mqtt_client
from cloud.quarantine import Reject, quarantine
from protocols.errors import AnjuError
from protocols.mqtt import messages as msg
from protocols.mqtt.commands import CommandResult
from protocols.mqtt.downlink import Config
from protocols.mqtt.health import Health
from protocols.mqtt.topics import Kind, TopicError, parse, subscription, topic
from runtime.clock import utc_now
from runtime.mqtt_client import connection
from runtime.tasks import finish_in_thread

log = logging.getLogger(__name__)
T = TypeVar("T")

DB_RETRY_S = 0.5  # first pause after a database error; doubles up to DB_RETRY_MAX_S
DB_RETRY_MAX_S = 10.0
RECONNECT_MAX_S = 30.0
# First pause before a failed worker starts again; doubles while failures follow each other
# (a run shorter than the cap), so a bug that fails at once costs a log line a minute.
RESTART_S = 1.0
RESTART_MAX_S = 60.0
SUBSCRIBED = (Kind.TELEMETRY, Kind.EVENTS, Kind.STATE, Kind.UP_ACK, Kind.HEALTH)
UplinkMessage = Batch | msg.State | CommandResult | Health
# A delivered message: its topic, its bytes, and what decoding made of it.
Decoded = tuple[str, bytes, UplinkMessage | Reject]
_MODELS: dict[Kind, type[UplinkMessage]] = {
    Kind.TELEMETRY: msg.Telemetry,
    Kind.EVENTS: msg.Events,
    Kind.STATE: msg.State,
    Kind.UP_ACK: CommandResult,
    Kind.HEALTH: Health,
}


class ConfigResender(Protocol):
    """Remote configurations sent again on drift (cloud.fleet.remote_config.Resender)."""

    def behind(self, session: Session, states: Sequence[msg.State]) -> list[Config]: ...

    def due(self, configs: Sequence[Config], now: datetime) -> list[tuple[str, bytes]]: ...


def decode_uplink(topic_name: str, raw: bytes) -> UplinkMessage:
    """Decode an uplink message; the gateway id in the body must match the topic's."""
    parsed = parse(topic_name)
    model = _MODELS.get(parsed.kind)
    if model is None:
        raise TopicError(f"ingest does not take {parsed.kind} messages")
    body = msg.decode(model, raw)
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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        resender: ConfigResender | None = None,
    ) -> None:
        """`sleep` takes every pause of the worker's backoffs (tests drive it); with
        `resender`, a gateway that reports an older configuration than its desired one is
        sent the desired one again (cloud.fleet.remote_config.Resender)."""
        self._settings = settings
        self._sessions = sessions
        self._now = now
        self._sleep = sleep
        # Unique by default: two workers with one MQTT client id would disconnect each other.
        self._worker_id = worker_id or f"ingest-{uuid.uuid4().hex[:8]}"
        self.metrics = IngestMetrics()
        self.ready = asyncio.Event()
        self._resender = resender
        self.configs_resent = 0

    def _client(self) -> aiomqtt.Client:
        return cloud_mqtt_client(self._settings, f"anju-{self._worker_id}")

    @property
    def down(self) -> bool:
        """Failed and not yet subscribed again."""
        return self.metrics.down

    async def run(self) -> None:
        """Consume until cancelled, whatever fails: a failure nothing below handles is logged
        with its stack, counted, and followed by a restart after a backoff."""
        delay = RESTART_S
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self._connected()
            except Exception:  # ingest must outlive any bug; logged below
                self.ready.clear()
                self.metrics.down = True
                self.metrics.restarts += 1
                if loop.time() - started >= RESTART_MAX_S:
                    delay = RESTART_S  # it ran a good while: not the same failure again
                log.exception("[%s] ingest failed; restarting in %.0f s", self._worker_id, delay)
                await self._sleep(delay)
                delay = min(delay * 2, RESTART_MAX_S)

    async def _connected(self) -> None:
        delay = 0.5
        group = self._settings.ingest_share_group if self._settings.ingest_shared else None
        while True:
            try:
                async with connection(self._client()) as client:
                    await self._session(client, group)
            except aiomqtt.MqttError as exc:
                if self.ready.is_set():
                    delay = 0.5  # we were connected: start the backoff afresh
                self.ready.clear()
                log.warning("[%s] broker connection lost (%s); retrying", self._worker_id, exc)
                await self._sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)

    async def _session(self, client: aiomqtt.Client, group: str | None) -> None:
        for kind in SUBSCRIBED:
            await client.subscribe(subscription(kind, share_group=group), qos=1)
        self.ready.set()
        self.metrics.down = False
        log.info(
            "[%s] subscribed to %s (%s)",
            self._worker_id,
            self._settings.mqtt_url,
            f"shared group {group}" if group else "plain",
        )
        await self._consume(client)

    async def _consume(self, client: aiomqtt.Client) -> None:
        messages = client.messages
        limit = self._settings.ingest_batch_messages
        while True:
            batch = [await anext(messages)]
            while len(messages) and len(batch) < limit:
                batch.append(await anext(messages))
            await self.handle(client, batch)

    async def handle(self, client: aiomqtt.Client, batch: list[aiomqtt.Message]) -> None:
        """Store one drained batch (retrying the database), then publish each gateway's ack."""
        self.metrics.received += len(batch)
        received = self._now()
        raw = [
            (m.topic.value, bytes(m.payload) if isinstance(m.payload, bytes | bytearray) else b"")
            for m in batch
        ]
        items = await asyncio.to_thread(_decode_all, raw)
        try:
            result = await self._store_retrying(items, received)
        except Exception as exc:  # noqa: BLE001 - a message the database refuses: find it
            log.warning(
                "[%s] a batch of %d messages failed (%s: %s); storing them one by one",
                self._worker_id,
                len(items),
                type(exc).__name__,
                exc,
            )
            result = await self._store_each(items, received)
        self.metrics.batches += 1
        self.metrics.stored += result.stored
        self.metrics.duplicates += result.duplicates
        self.metrics.command_results += result.command_results
        for _, _, body in items:
            if isinstance(body, CommandResult) and body.reason is not None:
                self.metrics.commands_refused[body.reason.value] += 1
        for reject in result.rejects:
            self.metrics.rejected[reject.reason] += 1
            log.warning("[%s] rejected %r: %r", self._worker_id, reject.topic, reject.detail)
        self.metrics.batch_size.observe(len(batch))
        stamps = [body.ts for _, _, body in items if isinstance(body, msg.Telemetry | msg.Events)]
        if stamps:
            stored_at = self._now()
            lags = [max(0.0, (stored_at - ts).total_seconds()) for ts in stamps]
            for lag in lags:
                self.metrics.lag.observe(lag)
            self.metrics.lag_seconds = min(lags)
        for (gid, epoch), stored_seq in result.acks.items():
            ack = msg.Ack(
                gateway_id=gid,
                epoch=epoch,
                seq=stored_seq,
                ts=self._now(),
                stored_seq=stored_seq,
            )
            await client.publish(topic(gid, Kind.DOWN_ACK), msg.encode(ack), qos=1)
            self.metrics.acks += 1
        await self._resend_configs(client, result.configs_behind, received)

    async def _resend_configs(
        self, client: aiomqtt.Client, configs: Sequence[Config], now: datetime
    ) -> None:
        """Desired configs again, retained, to the gateways that report an older one."""
        if self._resender is None or not configs:
            return
        try:
            due = self._resender.due(configs, now)
        except AnjuError as exc:  # no key here: the API's publish says the same
            log.warning("[%s] configs not sent again: %s", self._worker_id, exc)
            return
        for name, payload in due:
            await client.publish(name, payload, qos=1, retain=True)
            self.configs_resent += 1
            log.info("[%s] reported an older configuration; sent the desired one again", name)

    async def _store_retrying(self, items: Sequence[Decoded], received: datetime) -> StoreResult:
        """Store in one transaction, again and again while the database is unavailable."""
        delay = DB_RETRY_S
        while True:
            try:
                return await finish_in_thread(self._store, items, received)
            except (OperationalError, InterfaceError) as exc:
                self.metrics.db_retries += 1
                log.warning("[%s] database unavailable (%s); retrying", self._worker_id, exc.orig)
                await self._sleep(delay)
                delay = min(delay * 2, DB_RETRY_MAX_S)

    async def _store_each(self, items: Sequence[Decoded], received: datetime) -> StoreResult:
        """Each message in its own transaction; one that fails is quarantined alone."""
        total = StoreResult()
        for topic_name, payload, body in items:
            try:
                part = await self._store_retrying([(topic_name, payload, body)], received)
            except Exception as exc:  # whatever it is, it is this message's
                log.exception("[%s] a message on %r failed", self._worker_id, topic_name)
                reject = Reject(topic_name, "error", f"{type(exc).__name__}: {exc}", payload)
                try:
                    part = await self._store_retrying([(topic_name, payload, reject)], received)
                except Exception:  # the rest of the batch still goes in
                    log.exception("[%s] could not quarantine it: dropped", self._worker_id)
                    part = StoreResult(rejects=[reject])
            _merge(total, part)
        return total

    def _store(self, items: Sequence[Decoded], received: datetime) -> StoreResult:
        batches = [(t, b) for t, _, b in items if isinstance(b, msg.Telemetry | msg.Events)]
        states = [(t, b) for t, _, b in items if isinstance(b, msg.State)]
        results = [(t, b) for t, _, b in items if isinstance(b, CommandResult)]
        samples = [(t, p, b) for t, p, b in items if isinstance(b, Health)]
        rejects = [b for _, _, b in items if isinstance(b, Reject)]
        with self._sessions.begin() as session:
            result = store_batch(session, batches, states, received)
            if self._resender is not None:
                result.configs_behind = self._resender.behind(session, [s for _, s in states])
            recorded = commands.record_results(session, results, received)
            _, unknown = fleet_health.store_health(session, samples, received)
            fleet_health.state_alarms(session, [s for _, s in states], received)
            refused = rejects + recorded.rejects + unknown
            quarantine(session, refused, received)
        result.rejects[:0] = refused
        result.command_results = len(results) - len(recorded.rejects) - recorded.repeated
        return result


def _merge(total: StoreResult, part: StoreResult) -> None:
    for key, stored_seq in part.acks.items():
        total.acks[key] = max(total.acks.get(key, 0), stored_seq)
    total.stored += part.stored
    total.duplicates += part.duplicates
    total.rejects += part.rejects
    total.command_results += part.command_results


def _decode_all(raw: list[tuple[str, bytes]]) -> list[Decoded]:
    out: list[Decoded] = []
    for topic_name, payload in raw:
        body: UplinkMessage | Reject
        try:
            body = decode_uplink(topic_name, payload)
        except msg.MessageError as exc:
            body = Reject(topic_name, exc.reason, exc.detail, payload)
        except TopicError as exc:
            body = Reject(topic_name, "bad_topic", str(exc), payload)
        except Exception as exc:  # a decoder's bug must not stop ingest
            log.exception("decoding a message on %r failed", topic_name)
            body = Reject(topic_name, "error", f"{type(exc).__name__}: {exc}", payload)
        out.append((topic_name, payload, body))
    return out
