"""The link under faults: each test ends comparing every reading produced with the database."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from anju.broker import embedded_broker
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.worker import IngestWorker
from cloud.models import Quarantine
from protocols.mqtt import messages as msg
from protocols.mqtt.topics import Kind, topic
from tests.conftest import MQTT_URL, free_port
from tests.e2e.link_harness import (
    Link,
    Relay,
    as_async,
    as_rows,
    assert_same,
    mqtt_client,
    publish_until_acked,
    reading_payloads,
    wait_until,
)

pytestmark = pytest.mark.timeout(90)


async def test_mixed_kinds_share_one_seq_space(link: Link) -> None:
    outbox = link.open_outbox()
    produced = link.produce(0, 700)
    event_seqs = outbox.append(
        "event", [{"type": "door.open", "source": "door-1", "ts": datetime.now(UTC), "by": "card"}]
    )
    produced += link.produce(700, 300)
    async with link.ingest() as worker, link.uplink() as uplink:
        await wait_until(link.drained, 30, "the outbox to empty")
        assert uplink.acked_seq == 1001
    assert link.gateway().stored_seq == 1001
    assert [(e[0], e[1], e[2], e[3]) for e in link.stored_events()] == [
        (event_seqs[0], "door.open", "door-1", {"by": "card"})
    ]
    assert_same(produced, link.stored())
    assert worker.metrics.stored == 1001


async def test_ingest_stopped_for_a_while_then_restarted(link: Link) -> None:
    link.open_outbox()
    produced = link.produce(0, 500)
    async with link.uplink() as uplink:
        async with link.ingest():
            await wait_until(link.drained, 30, "the first burst to be stored")
        # Ingest is gone: the gateway keeps everything it produces and sends meanwhile.
        produced += link.produce(500, 1500)
        uplink.notify()
        await asyncio.sleep(1.0)
        assert link.outbox is not None
        assert link.outbox.stats().pending == 1500
        async with link.ingest():
            await wait_until(link.drained, 30, "the outbox to empty after ingest restarted")
    assert_same(produced, link.stored())


async def test_duplicate_out_of_order_and_malformed_deliveries(link: Link) -> None:
    """Publish as a gateway would, but shuffled, repeated and with garbage in between."""
    gid = link.gateway_id
    payloads = reading_payloads(0, 30)
    bodies = msg.encode_records(msg.RecordKind.READING, payloads)
    rows = list(enumerate(bodies, start=1))

    def batch(after: int, upto: int) -> bytes:
        return msg.encode_batch(
            msg.RecordKind.READING,
            gateway_id=gid,
            after=after,
            ts=datetime.now(UTC),
            records=rows[after:upto],
        )

    a, b, c = batch(0, 10), batch(10, 20), batch(20, 30)
    bad_schema = a.replace(b'"schema":1', b'"schema":9')
    sequence = [c, a, b"{not json", a, bad_schema, b'{"schema":1}', b, c]
    async with link.ingest() as worker:
        acks = await publish_until_acked(link.mqtt_url, gid, sequence, 30)
        assert worker.metrics.duplicates >= 10
        # (on a shared Mosquitto the worker also sees, and refuses, other tests' traffic)
        assert all(worker.metrics.rejected[k] for k in ("malformed", "unknown_schema", "invalid"))
    assert acks == sorted(acks), "the high-water mark went backwards"
    assert_same(as_rows(list(range(1, 31)), payloads), link.stored())
    with link.sessions() as session:
        reasons = session.scalars(
            select(Quarantine.reason).where(Quarantine.topic == topic(gid, Kind.TELEMETRY))
        ).all()
    assert sorted(reasons) == ["invalid", "malformed", "unknown_schema"]


async def test_unregistered_gateway_is_refused(link: Link) -> None:
    stranger = f"{link.gateway_id}-x"
    body = msg.encode_records(msg.RecordKind.READING, reading_payloads(0, 1))
    payload = msg.encode_batch(
        msg.RecordKind.READING,
        gateway_id=stranger,
        after=0,
        ts=datetime.now(UTC),
        records=[(1, body[0])],
    )

    def found() -> list[str]:
        with link.sessions() as session:
            return list(
                session.scalars(
                    select(Quarantine.reason).where(
                        Quarantine.topic == topic(stranger, Kind.TELEMETRY)
                    )
                )
            )

    async with link.ingest(), mqtt_client(link.mqtt_url, f"test-{stranger}") as client:
        await client.publish(topic(stranger, Kind.TELEMETRY), payload, qos=1)
        await wait_until(as_async(found), 10, "the stranger to be quarantined")
    assert found() == ["unknown_gateway"]


async def test_disk_budget_drops_oldest_counts_and_declares_them(link: Link) -> None:
    outbox = link.open_outbox(budget_bytes=60_000)
    produced = link.produce(0, 1000)  # about 150 bytes each: the oldest ~600 must go
    stats = outbox.stats()
    assert stats.dropped > 0
    assert stats.dropped + stats.pending == 1000
    kept = [r for r in produced if r[0] > stats.dropped_upto]
    async with link.ingest(), link.uplink():
        await wait_until(link.drained, 30, "the outbox to empty")

        def reported() -> bool:
            return link.gateway().dropped == stats.dropped

        await wait_until(as_async(reported), 10, "the dropped count to reach the cloud")
    gateway = link.gateway()
    assert gateway.stored_seq == 1000, "the declared gap must not stall the high-water mark"
    assert gateway.dropped_upto == stats.dropped_upto
    assert_same(kept, link.stored())


async def test_database_unavailable_while_messages_arrive(link: Link) -> None:
    outbox = link.open_outbox()
    produced = link.produce(0, 300)
    async with link.ingest(_fragile_worker(link)) as worker, link.uplink() as uplink:
        await wait_until(link.drained, 30, "the first burst")
        acked_before = uplink.acked_seq
        async with _database_outage(link.database_url):
            produced += link.produce(300, 1200)
            uplink.notify()
            await wait_until(as_async(lambda: worker.metrics.db_retries > 0), 20, "a db retry")
            assert uplink.acked_seq == acked_before, "acknowledged while the database was down"
            assert outbox.stats().pending == 1200
        await wait_until(link.drained, 60, "the outbox to empty after the outage")
    assert_same(produced, link.stored())


# ---- broker restart -----------------------------------------------------------------------


class RestartableBroker:
    """An embedded amqtt behind a loopback TCP relay. A restart stops the broker and cuts every
    relayed connection, as a real broker restart would: amqtt's in-process shutdown can leave
    a client talking to the old instance."""

    def __init__(self) -> None:
        self._broker_port = free_port()
        self._relay = Relay(self._broker_port)
        self._broker: contextlib.AbstractAsyncContextManager[object] | None = None

    @property
    def url(self) -> str:
        return self._relay.url

    async def start(self) -> None:
        self._broker = embedded_broker("127.0.0.1", self._broker_port)
        await self._broker.__aenter__()
        await self._relay.up()

    async def stop(self) -> None:
        await self._relay.down()
        if self._broker is not None:
            await self._broker.__aexit__(None, None, None)
            self._broker = None

    async def close(self) -> None:
        await self.stop()
        await self._relay.close()


@pytest.fixture(params=["amqtt-restart"] + (["mosquitto-takeover"] if MQTT_URL else []))
async def faulty_broker(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    if request.param == "mosquitto-takeover":
        assert MQTT_URL is not None
        yield MQTT_URL
        return
    broker = RestartableBroker()
    await broker.start()
    request.node.broker = broker
    try:
        yield broker.url
    finally:
        await broker.close()


async def test_broker_restarted_during_burst(
    faulty_broker: str, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """amqtt: stop and restart the broker mid-burst. Mosquitto (shared by everyone, so never
    stopped): kick our gateway and ingest off it by taking over their client ids."""
    async with Link(faulty_broker, database_url, tmp_path) as link:
        outbox = link.open_outbox()
        produced = link.produce(0, 2000)
        worker = IngestWorker(
            link.settings(), link.sessions, worker_id=f"ingest-{link.share_group}"
        )
        async with link.ingest(worker), link.uplink() as uplink:
            await wait_until(as_async(lambda: uplink.acked_seq > 0), 20, "the first ack")
            broker: RestartableBroker | None = getattr(request.node, "broker", None)
            if broker is not None:
                await broker.stop()
                produced += link.produce(2000, 1000)
                await asyncio.sleep(0.5)
                await broker.start()
            else:
                for client_id in (link.gateway_id, f"anju-{worker._worker_id}"):
                    async with mqtt_client(faulty_broker, client_id):
                        pass
                produced += link.produce(2000, 1000)
            uplink.notify()
            await wait_until(link.drained, 60, "the outbox to empty after the broker came back")
            assert outbox.stats().acked_seq == 3000
        assert_same(produced, link.stored())


# ---- helpers ------------------------------------------------------------------------------


def _fragile_worker(link: Link) -> IngestWorker:
    """A worker whose SQLite connections give up on a lock at once (so an outage surfaces as
    errors and retries, not a 30 s wait), and whose PostgreSQL backends carry a name the
    outage can find."""
    if link.database_url.startswith("sqlite"):
        engine = make_engine(link.database_url, connect_args={"timeout": 0.1})
    else:
        engine = make_engine(f"{link.database_url}&application_name={_schema(link.database_url)}")
    link.engines.append(engine)
    return IngestWorker(link.settings(), make_sessionmaker(engine))


def _schema(url: str) -> str:
    return url.rsplit("search_path%3D", 1)[1].split("&", maxsplit=1)[0]


class _database_outage:  # noqa: N801 - used as a context manager
    """SQLite: hold an exclusive lock. PostgreSQL: lock our schema's gateways table and keep
    terminating the worker's backends, so every attempt fails until the outage ends."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sqlite: sqlite3.Connection | None = None

    async def __aenter__(self) -> None:
        if self._url.startswith("sqlite"):
            self._sqlite = sqlite3.connect(
                self._url.removeprefix("sqlite:///"), isolation_level=None
            )
            self._sqlite.execute("BEGIN EXCLUSIVE")
            return
        locked = asyncio.Event()
        self._task = asyncio.create_task(self._outage(locked), name="outage")
        await locked.wait()

    async def __aexit__(self, *_: object) -> None:
        if self._sqlite is not None:
            self._sqlite.execute("ROLLBACK")
            self._sqlite.close()
        if self._task is not None:
            self._stop.set()
            await self._task

    async def _outage(self, locked: asyncio.Event) -> None:
        engine = make_engine(self._url)
        kill = text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND application_name = :app"
        )
        try:
            with engine.connect() as locker, engine.connect() as killer:
                locker.execute(text("LOCK TABLE gateways IN ACCESS EXCLUSIVE MODE"))
                locked.set()
                while not self._stop.is_set():
                    await asyncio.to_thread(killer.execute, kill, {"app": _schema(self._url)})
                    killer.commit()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.2):
                            await self._stop.wait()
                locker.rollback()
        finally:
            engine.dispose()
