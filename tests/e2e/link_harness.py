"""Helpers for the link's end-to-end tests: a gateway outbox + uplink, an ingest worker, and a
full-set comparison of what the gateway produced with what the database holds."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import Engine, select

from anju.broker import embedded_broker
from cloud import migrate
from cloud.commands.dispatcher import CommandDispatcher
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.store import register_gateway
from cloud.ingest.worker import IngestWorker
from cloud.models import Event, Gateway, Quarantine, Reading
from edge.config import GatewayConfig
from edge.store.outbox import Outbox
from edge.uplink.client import Uplink
from protocols.mqtt import messages as msg
from protocols.mqtt.topics import Kind, topic
from protocols.mqtt.url import parse_broker_url
from tests.conftest import DATABASE_URL, MQTT_URL, free_port, mqtt_protocol, postgres_schema

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Row = tuple[int, str, str, float, datetime]
# A test too heavy for every broker/database pair runs on the embedded pair and, when they are
# configured, on the real servers (Mosquitto, PostgreSQL) together.
SERVER_VARIANTS = ["embedded"] + (["servers"] if MQTT_URL or DATABASE_URL else [])
# A stopped service ends within this long: aiomqtt's DISCONNECT wait is 10 s at most.
STOP_S = 20.0
PERSISTENT_SESSION_S = 300  # an MQTT 5 test client's session outlives its connection this long


def mqtt_client(
    url: str,
    identifier: str,
    *,
    username: str | None = None,
    password: str | None = None,
    protocol: str | None = None,
    will: aiomqtt.Will | None = None,
    ca_file: Path | None = None,
    persistent: bool = False,
) -> aiomqtt.Client:
    """A plain client, for a test that publishes or listens as a gateway or the cloud would;
    `persistent`: the broker keeps its session, as the gateway's (MQTT 3.1.1 clean_session
    false; MQTT 5 clean_start false, with a session expiry)."""
    address = parse_broker_url(url)
    v5 = (protocol or mqtt_protocol(url)) == "5"
    tls = ssl.create_default_context(cafile=ca_file) if address.tls else None
    session: dict[str, Any] = {}
    if persistent and v5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = PERSISTENT_SESSION_S
        session = {"properties": props, "clean_start": False}
    elif persistent:
        session = {"clean_session": False}
    return aiomqtt.Client(
        address.host,
        address.port,
        tls_context=tls,
        identifier=identifier,
        username=username,
        password=password,
        will=will,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        **session,
    )


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def reading_payloads(start: int, count: int, *, meters: int = 200) -> list[dict[str, Any]]:
    """Readings with values and times derived from their index: easy to compare exactly."""
    return [
        {
            "meter": f"m-{i % meters:03d}",
            "point": "energy",
            "value": i / 100,
            "unit": "kWh",
            "ts": T0 + timedelta(minutes=i // meters),
        }
        for i in range(start, start + count)
    ]


def as_rows(seqs: list[int], payloads: list[dict[str, Any]]) -> list[Row]:
    return [
        (s, p["meter"], p["point"], p["value"], p["ts"])
        for s, p in zip(seqs, payloads, strict=True)
    ]


def as_async(check: Callable[[], object]) -> Callable[[], Awaitable[bool]]:
    """A plain predicate as `wait_until` takes it."""

    async def wrapped() -> bool:
        return bool(check())

    return wrapped


async def publish_until_acked(
    mqtt_url: str, gateway_id: str, payloads: list[bytes], stored_seq: int
) -> list[int]:
    """Publish telemetry payloads as the gateway would, in order, then wait until the cloud
    acknowledges `stored_seq`; returns the mark of every ack received."""
    acks: list[int] = []
    async with mqtt_client(mqtt_url, f"test-{gateway_id}") as client:
        await client.subscribe(topic(gateway_id, Kind.DOWN_ACK), qos=1)
        for payload in payloads:
            await client.publish(topic(gateway_id, Kind.TELEMETRY), payload, qos=1)

        async def acked() -> bool:
            while len(client.messages):
                message = await anext(client.messages)
                assert isinstance(message.payload, bytes)
                acks.append(msg.decode(msg.Ack, message.payload).stored_seq)
            return bool(acks) and acks[-1] == stored_seq

        await wait_until(acked, 20, f"stored_seq {stored_seq} to be acknowledged")
    return acks


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout_s: float, what: str, poll_s: float = 0.05
) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not await check():  # noqa: ASYNC110 - polling state in a database or file
                await asyncio.sleep(poll_s)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}") from None


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a service task; a task that had already died fails the test with its error, and
    one that outlives its cancel fails it with its stack (who swallowed the cancel)."""
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise AssertionError(f"{task.get_name()} died") from task.exception()
    task.cancel()
    await asyncio.wait([task], timeout=STOP_S)
    if not task.done():
        stack = io.StringIO()
        task.print_stack(file=stack)
        raise AssertionError(
            f"{task.get_name()} still running {STOP_S} s after its cancel:\n{stack.getvalue()}"
        )
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)  # let the broker side see the disconnect and close its socket


@dataclass
class Link:
    """One gateway and one cloud on a broker; each piece can be started and stopped."""

    mqtt_url: str
    database_url: str
    tmp_path: Path
    link: dict[str, Any] = field(default_factory=dict)
    gateway_id: str = field(default_factory=lambda: f"gw-{uuid.uuid4().hex[:10]}")
    share_group: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    engine: Engine | None = None
    outbox: Outbox | None = None
    engines: list[Engine] = field(default_factory=list)  # more engines to dispose at the end
    protocol: str = ""  # MQTT version; "" = what the broker of `mqtt_url` speaks
    # The gateway's broker login (its id as the username), for a broker that checks them.
    password: str | None = None
    ca_file: Path | None = None  # the private CA of an mqtts:// broker
    dispatcher: CommandDispatcher | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.protocol = self.protocol or mqtt_protocol(self.mqtt_url)
        self.engine = make_engine(self.database_url)
        self.sessions = make_sessionmaker(self.engine)
        with self.sessions.begin() as session:
            register_gateway(session, self.gateway_id, "test building")
        self.link = {"ack_timeout_s": 2.0, "state_interval_s": 0.5, **self.link}

    @property
    def config(self) -> GatewayConfig:
        return GatewayConfig.model_validate(
            {
                "gateway_id": self.gateway_id,
                "mqtt": {
                    "url": self.mqtt_url,
                    "protocol": self.protocol,
                    "keepalive_s": 5,
                    **(
                        {"username": self.gateway_id, "password": self.password}
                        if self.password
                        else {}
                    ),
                    **({"ca_file": str(self.ca_file)} if self.ca_file else {}),
                },
                "store": {"path": str(self.tmp_path / f"{self.gateway_id}.db")},
                "link": self.link,
            }
        )

    def settings(self, **overrides: Any) -> Settings:
        defaults: dict[str, Any] = {
            "env": "development",
            "database_url": self.database_url,
            "mqtt_url": self.mqtt_url,
            "mqtt_protocol": self.protocol,
            "ingest_share_group": self.share_group,
            "mqtt_keepalive_s": 5,
            "mqtt_ca_file": self.ca_file,
        }
        return Settings(**{**defaults, **overrides})

    def open_outbox(self, budget_bytes: int | None = None) -> Outbox:
        self.outbox = Outbox(self.config.store.path, budget_bytes=budget_bytes)
        return self.outbox

    def produce(self, start: int, count: int) -> list[Row]:
        assert self.outbox is not None
        payloads = reading_payloads(start, count)
        return as_rows(self.outbox.append("reading", payloads), payloads)

    @contextlib.asynccontextmanager
    async def ingest(
        self, worker: IngestWorker | None = None, *, commands: bool = False
    ) -> AsyncIterator[IngestWorker]:
        """An ingest worker, and with `commands` its sibling dispatcher (`self.dispatcher`)."""
        worker = worker or IngestWorker(self.settings(), self.sessions)
        tasks = [asyncio.create_task(worker.run(), name="ingest")]
        if commands:
            self.dispatcher = CommandDispatcher(self.settings(), self.sessions, worker.metrics)
            tasks.append(asyncio.create_task(self.dispatcher.run(), name="commands"))
        try:
            await asyncio.wait_for(worker.ready.wait(), 10)
            yield worker
        finally:
            for task in reversed(tasks):
                await stop(task)

    @contextlib.asynccontextmanager
    async def uplink(self) -> AsyncIterator[Uplink]:
        assert self.outbox is not None
        uplink = Uplink(self.config, self.outbox, now=lambda: datetime.now(UTC))
        task = asyncio.create_task(uplink.run(), name="uplink")
        try:
            yield uplink
        finally:
            await stop(task)

    async def drained(self) -> bool:
        assert self.outbox is not None
        return (await asyncio.to_thread(self.outbox.stats)).pending == 0

    def _stored(self, gateway_id: str | None = None) -> list[tuple[int, Row]]:
        """(epoch, reading) of every stored reading of this gateway (or another), in the order
        stored."""
        with self.sessions() as session:
            rows = session.execute(
                select(
                    Reading.epoch,
                    Reading.seq,
                    Reading.meter_id,
                    Reading.point,
                    Reading.value,
                    Reading.ts,
                )
                .where(Reading.gateway_id == (gateway_id or self.gateway_id))
                .order_by(Reading.id)
            ).all()
        return [(e, (s, m, p, v, utc(t))) for e, s, m, p, v, t in rows]

    def stored(self, gateway_id: str | None = None) -> list[Row]:
        """The readings of this gateway (or another) in the database."""
        return [row for _, row in self._stored(gateway_id)]

    def stored_by_epoch(self) -> dict[int, list[Row]]:
        out: dict[int, list[Row]] = {}
        for epoch, row in self._stored():
            out.setdefault(epoch, []).append(row)
        return out

    def stored_events(self) -> list[tuple[int, str, str, dict[str, Any]]]:
        with self.sessions() as session:
            rows = session.execute(
                select(Event.seq, Event.type, Event.source, Event.data)
                .where(Event.gateway_id == self.gateway_id)
                .order_by(Event.id)
            ).all()
        return [(s, t, src, d) for s, t, src, d in rows]

    def quarantined(self) -> list[tuple[str, str]]:
        """(reason, detail) of what was quarantined from this gateway's topics, in order."""
        with self.sessions() as session:
            rows = session.execute(
                select(Quarantine.reason, Quarantine.detail)
                .where(Quarantine.topic.startswith(f"anju/v1/{self.gateway_id}/", autoescape=True))
                .order_by(Quarantine.id)
            ).all()
        return [(reason, detail) for reason, detail in rows]

    def gateway(self) -> Gateway:
        with self.sessions() as session:
            gateway = session.get(Gateway, self.gateway_id)
            assert gateway is not None
            return gateway

    async def __aenter__(self) -> Link:
        return self

    async def __aexit__(self, *_: object) -> None:
        try:
            await forget_gateway(self.mqtt_url, self.gateway_id, self.ca_file)
        finally:
            self.close()

    def close(self) -> None:
        if self.outbox is not None:
            self.outbox.close()
        for engine in [self.engine, *self.engines]:
            if engine is not None:
                engine.dispose()


async def forget_gateway(url: str, gateway_id: str, ca_file: Path | None = None) -> None:
    """Delete what a test gateway leaves on its broker: its retained `up/state` (an empty
    retained message deletes one) and its persistent session (connecting with its client id
    and a clean session ends it). On the shared Mosquitto every ingest worker subscribing later
    would otherwise be handed the state of every test gateway ever run, and quarantine each as
    an unknown gateway. Run it once the gateway has stopped, or it publishes its state again."""
    async with mqtt_client(url, gateway_id, ca_file=ca_file) as client:
        await client.publish(topic(gateway_id, Kind.STATE), b"", qos=1, retain=True)


@contextlib.asynccontextmanager
async def in_process_broker() -> AsyncIterator[str]:
    port = free_port()
    async with embedded_broker("127.0.0.1", port):
        yield f"mqtt://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def link_on(
    variant: str,
    tmp_path: Path,
    broker: Callable[[], contextlib.AbstractAsyncContextManager[str]] = in_process_broker,
    **fields: Any,
) -> AsyncIterator[Link]:
    """A Link on one of SERVER_VARIANTS: "embedded" is `broker()`'s amqtt and a SQLite file;
    "servers" the configured Mosquitto and PostgreSQL (embedded for one not configured)."""
    async with contextlib.AsyncExitStack() as stack:
        mqtt_url, database_url = MQTT_URL, DATABASE_URL
        if variant == "embedded" or mqtt_url is None:
            mqtt_url = await stack.enter_async_context(broker())
        if variant == "embedded" or database_url is None:
            database_url = f"sqlite:///{tmp_path / 'cloud.db'}"
        else:
            database_url = stack.enter_context(postgres_schema())
        migrate.upgrade(database_url)
        yield await stack.enter_async_context(Link(mqtt_url, database_url, tmp_path, **fields))


def assert_same(produced: list[Row], stored: list[Row]) -> None:
    """Zero missing, zero duplicated: the full sets and the counts must match."""
    assert len(stored) == len({r[0] for r in stored}), "duplicated seqs in the database"
    missing = set(produced) - set(stored)
    extra = set(stored) - set(produced)
    assert not missing, f"{len(missing)} readings missing, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unexpected readings, e.g. {sorted(extra)[:3]}"
    assert len(stored) == len(produced)


class Relay:
    """A loopback TCP relay to a broker's port. Until the first `up()` its port is bound but
    not listening, so connections are refused, as by a host whose broker is not running (and
    no other process can take the port meanwhile). `down()` drops every relayed connection,
    as a broker restart or a network cut would, and closes new ones at once until `up()`.
    While `lose_sent` is set, what clients send is lost on the way (the broker's PUBACKs never
    come), while what the broker sends still arrives."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"mqtt://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server: asyncio.Server | None = None
        self._up = False
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.lose_sent = False

    async def up(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, sock=self._socket)
        self._up = True

    async def down(self) -> None:
        self._up = False
        for writer in list(self._writers):
            writer.close()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def close(self) -> None:
        await self.down()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._socket.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            if not self._up:
                return
            up_reader, upstream = await asyncio.open_connection("127.0.0.1", self._upstream)
            self._writers |= {writer, upstream}
            async with asyncio.TaskGroup() as tg:
                tg.create_task(_pump(reader, upstream, lambda: self.lose_sent))
                tg.create_task(_pump(up_reader, writer))
        except (OSError, ExceptionGroup):
            pass
        finally:
            self._pipes.discard(task)
            for w in (writer, upstream):
                if w is not None:
                    self._writers.discard(w)
                    w.close()
                    with contextlib.suppress(OSError):
                        await w.wait_closed()  # or the socket outlives the test's loop


async def _pump(
    source: asyncio.StreamReader,
    sink: asyncio.StreamWriter,
    lose: Callable[[], bool] = lambda: False,
) -> None:
    with contextlib.suppress(OSError):
        while data := await source.read(65536):
            if lose():
                continue
            sink.write(data)
            await sink.drain()
    sink.close()
