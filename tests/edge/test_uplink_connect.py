"""The uplink while it connects: a cancel closes its socket (aiomqtt 2.5 leaves it open); a
refused login is logged once and retried slowly; an applied access list is reported at once,
a flood of them once a second."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from anju.broker import embedded_broker
from cloud import migrate
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.store import register_gateway
from edge.config import GatewayConfig
from edge.store.outbox import Outbox
from edge.uplink.client import STATE_GAP_S, Uplink
from protocols.mqtt import messages as msg
from protocols.mqtt.topics import Kind, topic
from runtime.backoff import Backoff
from tests.conftest import free_port
from tests.e2e.link_harness import Relay, as_async, mqtt_client, stop, wait_until

pytestmark = pytest.mark.timeout(30)


async def test_cancel_while_waiting_for_connack_closes_the_socket(tmp_path: Path) -> None:
    """A broker that accepts TCP but never answers CONNECT; the uplink is stopped meanwhile.

    The broker's side must then see the connection end (EOF), not a socket left open.
    """
    accepted: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append((reader, writer))

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = GatewayConfig.model_validate(
        {
            "gateway_id": "gw-silent",
            "mqtt": {"url": f"mqtt://127.0.0.1:{port}", "keepalive_s": 5},
            "store": {"path": str(tmp_path / "gw.db")},
        }
    )
    outbox = Outbox(config.store.path)
    try:
        uplink = Uplink(config, outbox, now=lambda: datetime.now(UTC))
        task = asyncio.create_task(uplink.run(), name="uplink")

        async def connected() -> bool:
            return bool(accepted)

        await wait_until(connected, 10, "the uplink's TCP connection")
        await stop(task)
        assert not uplink.connected.is_set()
        reader = accepted[0][0]
        async with asyncio.timeout(2):  # well before keep-alive (5 s) would end it
            await reader.read()  # everything the client sent, then EOF once it closed
        assert reader.at_eof()
    finally:
        for _, writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
        outbox.close()


async def test_refused_credentials_are_logged_once_and_backed_off_to_the_cap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker that checks logins refuses the gateway's password: one clear error, then
    retries at the backoff's cap (driven sleep: nothing waits), until the registry takes it."""
    caplog.set_level(logging.INFO, logger="edge.uplink.client")
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        register_gateway(session, "gw-locked", credential="the-registered-secret-0123")
    port = free_port()
    config = GatewayConfig.model_validate(
        {
            "gateway_id": "gw-locked",
            "mqtt": {
                "url": f"mqtt://127.0.0.1:{port}",
                "protocol": "3.1.1",
                "username": "gw-locked",
                "password": "a-stale-secret-0123456",
            },
            "store": {"path": str(tmp_path / "gw.db")},
        }
    )
    delays: list[float] = []

    async def driven_sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0.01)  # the attempt itself is real: a CONNECT to a real broker

    outbox = Outbox(config.store.path)
    backoff = Backoff(cap=60.0, rand=lambda: 1.0)  # no jitter: the delay is the ceiling
    uplink = Uplink(
        config, outbox, now=lambda: datetime.now(UTC), sleep=driven_sleep, backoff=backoff
    )
    try:
        async with embedded_broker("127.0.0.1", port, database_url=url):
            task = asyncio.create_task(uplink.run(), name="uplink")
            try:
                await wait_until(as_async(lambda: len(delays) >= 4), 20, "four refused attempts")
                assert delays[:4] == [60.0] * 4  # straight to the cap, not 0.5, 1, 2, ...
                refusals = [
                    r for r in caplog.records if "broker refused credentials" in r.getMessage()
                ]
                assert len(refusals) == 1
                assert refusals[0].levelno == logging.ERROR
                assert "gateway gw-locked" in refusals[0].getMessage()
                with sessions.begin() as session:  # an operator fixes the registry
                    register_gateway(session, "gw-locked", credential="a-stale-secret-0123456")
                await asyncio.wait_for(uplink.connected.wait(), 20)
            finally:
                await stop(task)
    finally:
        outbox.close()
        engine.dispose()
    assert "uplink reconnected" in caplog.text
    assert len([r for r in caplog.records if "refused credentials" in r.getMessage()]) == 1


async def test_a_stop_while_a_lost_connection_unwinds_stops_the_uplink(tmp_path: Path) -> None:
    """The connection drops; while the session's parts unwind (one failed) the uplink is told
    to stop. Python 3.11's TaskGroup raised the failed part's MqttError then, not the cancel,
    and the uplink reconnected and ran on (runtime.tasks)."""
    unwinding, unwound = asyncio.Event(), asyncio.Event()

    async def sleep(seconds: float) -> None:
        """The state reporter's sleep; the first one cancelled takes a moment to unwind."""
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            if not unwinding.is_set():
                unwinding.set()
                await unwound.wait()
            raise

    port = free_port()
    relay = Relay(port)
    config = GatewayConfig.model_validate(
        {
            "gateway_id": "gw-unwinding",
            "mqtt": {"url": relay.url, "protocol": "3.1.1", "keepalive_s": 5},
            "store": {"path": str(tmp_path / "gw.db")},
            "link": {"state_interval_s": 3600},
        }
    )
    outbox = Outbox(config.store.path)
    try:
        async with embedded_broker("127.0.0.1", port):
            await relay.up()
            uplink = Uplink(config, outbox, now=lambda: datetime.now(UTC), sleep=sleep)
            task = asyncio.create_task(uplink.run(), name="uplink")
            try:
                await asyncio.wait_for(uplink.connected.wait(), 10)
                await relay.down()  # the connection is lost: the receiver fails
                await asyncio.wait_for(unwinding.wait(), 10)
                task.cancel()  # the stop lands while the group unwinds
                unwound.set()
                done, _ = await asyncio.wait([task], timeout=10)
                assert done, "the uplink ran on after its stop"
                assert task.cancelled()
            finally:
                await stop(task)
    finally:
        await relay.close()
        outbox.close()


class Versions:
    """An access inbox whose applied version the test moves."""

    def __init__(self) -> None:
        self.version: int | None = 1

    def deliver(self, payload: bytes) -> None:
        raise AssertionError("no list is sent in this test")


class DrivenClock:
    """The uplink's monotonic clock and sleep, moved by the test: a sleep ends once the test
    has advanced the clock past it (the hour-long state interval never does here)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._moved = asyncio.Condition()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        until = self.now + seconds
        async with self._moved:
            await self._moved.wait_for(lambda: self.now >= until)

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        async with self._moved:
            self._moved.notify_all()
        await asyncio.sleep(0)  # the woken sleepers run


async def test_applied_lists_are_reported_at_once_and_a_flood_once_a_second(
    tmp_path: Path,
) -> None:
    """Each applied list asks for an `up/state` out of turn (the interval is an hour here): it
    goes out within one STATE_GAP_S of the clock. A flood of 40 lists in 2 s of the clock
    reaches the broker as at most one state per gap of the clock, the last carrying the last
    version; so does all that follows, up to one more list."""
    port = free_port()
    config = GatewayConfig.model_validate(
        {
            "gateway_id": "gw-flood",
            "mqtt": {"url": f"mqtt://127.0.0.1:{port}", "protocol": "3.1.1", "keepalive_s": 5},
            "store": {"path": str(tmp_path / "gw.db")},
            "link": {"state_interval_s": 3600},
        }
    )
    versions = Versions()
    clock = DrivenClock()
    outbox = Outbox(config.store.path)
    uplink = Uplink(
        config,
        outbox,
        now=lambda: datetime.now(UTC),
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        access=versions,
    )
    seen: list[int | None] = []

    async def applied(version: int) -> None:
        versions.version = version
        await asyncio.to_thread(uplink.report_state)  # from the applying thread

    try:
        async with (
            embedded_broker("127.0.0.1", port),
            mqtt_client(f"mqtt://127.0.0.1:{port}", "watcher") as watcher,
        ):
            await watcher.subscribe(topic("gw-flood", Kind.STATE), qos=1)

            async def watch() -> None:
                async for message in watcher.messages:
                    assert isinstance(message.payload, bytes)
                    seen.append(msg.decode(msg.State, message.payload).access_version)

            watching = asyncio.create_task(watch(), name="watch")
            task = asyncio.create_task(uplink.run(), name="uplink")
            try:
                await wait_until(as_async(lambda: seen), 10, "the state on connecting")
                await applied(2)
                await clock.advance(STATE_GAP_S)  # one gap after the state on connecting
                await wait_until(as_async(lambda: seen[-1] == 2), 5, "version 2 reported")
                before = len(seen)
                for version in range(3, 43):
                    await applied(version)
                    await clock.advance(0.05)
                await clock.advance(STATE_GAP_S)
                await wait_until(as_async(lambda: seen[-1] == 42), 5, "version 42 reported")
                flooded = seen[before:]
                await clock.advance(2 * STATE_GAP_S)
                await applied(43)
                await clock.advance(STATE_GAP_S)
                await wait_until(as_async(lambda: seen[-1] == 43), 5, "version 43 reported")
            finally:
                await stop(task)
                await stop(watching)
    finally:
        outbox.close()
    # 40 lists in 2 s, then one gap: a state per gap at most, not one per list
    assert 1 <= len(flooded) <= (40 * 0.05 + STATE_GAP_S) / STATE_GAP_S + 1
    driven = 40 * 0.05 + 4 * STATE_GAP_S  # from the flood's first list to version 43
    assert len(seen[before:]) <= driven / STATE_GAP_S + 1
    assert seen[-1] == 43
