"""Broker logins and ACL from the registry, on the embedded amqtt and on a private Mosquitto.

amqtt checks the registry itself (anju.broker_auth); Mosquitto is started with the files
`anju cloud broker-auth export` writes. Each broker must: let a registered gateway and the
ingest's service account in and store the readings; refuse wrong, unknown and credential-less
logins at CONNECT; keep a gateway to its own topics (nothing it sends lands as another's).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import select

from anju.broker import embedded_broker
from cloud.broker_accounts import all_accounts, register_service
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.store import register_gateway
from cloud.ingest.worker import IngestWorker
from cloud.models import Quarantine
from cloud.mosquitto_files import render, replace_file
from protocols.mqtt import messages as msg
from protocols.mqtt.acl import client_id
from protocols.mqtt.topics import Kind, topic
from runtime.mqtt_client import refused_credentials
from tests.conftest import free_port
from tests.e2e.link_harness import (
    Link,
    Relay,
    as_async,
    as_rows,
    assert_same,
    mqtt_client,
    reading_payloads,
    wait_until,
)
from tests.private_mosquitto import PrivateMosquitto, private_mosquitto

pytestmark = pytest.mark.timeout(90)

GW_A, GW_B, GW_BARE = "gw-a", "gw-b", "gw-bare"
SECRETS = {GW_A: "secret-of-gateway-a-0123", GW_B: "secret-of-gateway-b-0123"}
SERVICE, SERVICE_SECRET = "ingest-test", "secret-of-the-ingest-0123"


@dataclass
class Secured:
    """A broker that checks logins against the registry in `database_url`; gateways log in at
    `url`, cloud services at `service_url` (Mosquitto's listener for them, as the role has it)."""

    url: str
    service_url: str
    protocol: str
    database_url: str
    tmp_path: Path
    mosquitto: PrivateMosquitto | None = None

    def link(self, gateway_id: str) -> Link:
        return Link(
            self.url,
            self.database_url,
            self.tmp_path,
            gateway_id=gateway_id,
            password=SECRETS[gateway_id],
            protocol=self.protocol,
        )

    def client(
        self, identifier: str, username: str | None, password: str | None, **kw: object
    ) -> aiomqtt.Client:
        return mqtt_client(
            self.url,
            identifier,
            username=username,
            password=password,
            protocol=self.protocol,
            **kw,  # type: ignore[arg-type]
        )

    def service(self, name: str) -> aiomqtt.Client:
        """A client of the cloud's service login, as its processes make them."""
        return mqtt_client(
            self.service_url,
            client_id(SERVICE, name),
            username=SERVICE,
            password=SERVICE_SECRET,
            protocol=self.protocol,
        )


def register_all(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            for gid, secret in SECRETS.items():
                register_gateway(session, gid, credential=secret)
            register_gateway(session, GW_BARE)  # --no-credential: cannot log in
            register_service(session, SERVICE, SERVICE_SECRET, datetime.now(UTC))
    finally:
        engine.dispose()


def export(database_url: str, password_file: Path, acl_file: Path) -> None:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            auth = render(all_accounts(session))
    finally:
        engine.dispose()
    replace_file(password_file, auth.password_file)
    replace_file(acl_file, auth.acl_file)


@pytest.fixture(params=["amqtt", "mosquitto"])
async def secured(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> AsyncIterator[Secured]:
    register_all(database_url)
    if request.param == "amqtt":
        port = free_port()
        async with embedded_broker("127.0.0.1", port, database_url=database_url):
            url = f"mqtt://127.0.0.1:{port}"
            yield Secured(url, url, "3.1.1", database_url, tmp_path)
        return
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    export(database_url, passwd, acl)
    async with private_mosquitto(tmp_path, password_file=passwd, acl_file=acl) as broker:
        # MQTT 5, so the ingest uses a shared subscription ($share/...) as in production
        yield Secured(broker.url, broker.services_url, "5", database_url, tmp_path, broker)


@contextlib.asynccontextmanager
async def service_ingest(secured: Secured, link: Link) -> AsyncIterator[IngestWorker]:
    settings = link.settings(
        mqtt_url=secured.service_url, mqtt_username=SERVICE, mqtt_password=SERVICE_SECRET
    )
    async with link.ingest(IngestWorker(settings, link.sessions)) as worker:
        yield worker


async def test_gateway_and_ingest_log_in_and_readings_are_stored(secured: Secured) -> None:
    link = secured.link(GW_A)
    try:
        link.open_outbox()
        produced = link.produce(0, 200)
        async with service_ingest(secured, link), link.uplink() as uplink:
            await wait_until(link.drained, 30, "gateway A's outbox to empty")
            assert uplink.connected.is_set()

            # its retained state (up/state) went through too; a clean stop later says offline
            async def online() -> bool:
                return link.gateway().online

            await wait_until(online, 30, "gateway A online in the cloud")
        assert_same(produced, link.stored())
    finally:
        link.close()


@pytest.mark.parametrize(
    ("username", "password"),
    [
        (GW_A, "not-the-password-of-a"),
        ("gw-unregistered", SECRETS[GW_A]),
        (GW_BARE, SECRETS[GW_A]),  # registered without a credential
        (GW_B, SECRETS[GW_A]),  # another gateway's password
        (SERVICE, "not-the-service-secret"),
        (None, None),  # anonymous
    ],
)
async def test_wrong_unknown_and_anonymous_logins_are_refused_at_connect(
    secured: Secured, username: str | None, password: str | None
) -> None:
    with pytest.raises(aiomqtt.MqttError) as refused:
        async with secured.client(username or "t-refused", username, password):
            pass
    assert refused_credentials(refused.value), refused.value


def forged(gateway_id: str, start: int, count: int) -> tuple[bytes, list[dict[str, Any]]]:
    payloads = reading_payloads(start, count)
    bodies = msg.encode_records(msg.RecordKind.READING, payloads)
    body = msg.encode_batch(
        msg.RecordKind.READING,
        gateway_id=gateway_id,
        after=0,
        ts=datetime.now(UTC),
        records=list(enumerate(bodies, start=1)),
    )
    return body, payloads


async def test_a_gateway_cannot_publish_or_listen_as_another(secured: Secured) -> None:
    """A, logged in, publishes readings as B and subscribes to B's acks. The broker drops what
    A sends under B and gives A nothing of B's; B's own readings are stored, and only those."""
    b = secured.link(GW_B)
    a_topic = topic(GW_A, Kind.TELEMETRY)
    try:
        b.open_outbox()
        produced_b = b.produce(0, 100)
        heard: list[str] = []
        async with (
            service_ingest(secured, b),
            secured.client(GW_A, GW_A, SECRETS[GW_A]) as a,
        ):
            granted = await a.subscribe(topic(GW_B, Kind.DOWN_ACK), qos=1)
            await a.subscribe("anju/v1/+/down/ack", qos=1)
            await a.subscribe("anju/v1/#", qos=1)

            async def listen() -> None:
                async for message in a.messages:
                    heard.append(message.topic.value)  # noqa: PERF401 - as they come

            listener = asyncio.create_task(listen(), name="gateway-a-listens")
            try:
                as_b, _ = forged(GW_B, 10_000, 5)
                with contextlib.suppress(aiomqtt.MqttCodeError):  # MQTT 5: PUBACK "not authorized"
                    await a.publish(topic(GW_B, Kind.TELEMETRY), as_b, qos=1)
                async with b.uplink():
                    await wait_until(b.drained, 30, "gateway B's outbox to empty")
                # A's own message after the forged one: once it is stored, the forged one
                # would have been too (a client's messages arrive in order).
                own, own_payloads = forged(GW_A, 20_000, 1)
                await a.publish(a_topic, own, qos=1)

                await wait_until(
                    as_async(lambda: b.stored(GW_A)), 15, "gateway A's own reading to be stored"
                )
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
        assert_same(produced_b, b.stored())
        assert b.stored(GW_A) == as_rows([1], own_payloads)
        # A hears its own acks (of its one reading) and nothing of B's. amqtt refuses the
        # subscriptions; Mosquitto 2.0's acl_file grants any subscription and checks read
        # access on each delivery instead.
        assert [t for t in heard if not t.startswith(f"anju/v1/{GW_A}/")] == []
        with b.sessions() as session:
            assert session.scalars(select(Quarantine.topic)).all() == []
        if secured.mosquitto is None:
            assert [getattr(c, "value", c) for c in granted] == [0x80], granted
    finally:
        b.close()


async def _connect_and_cut(
    secured: Secured, relay: Relay, username: str, will: aiomqtt.Will
) -> bool:
    """Log in through `relay` with a Will, then cut the link without a DISCONNECT, so the
    broker publishes the Will. False if the broker refused the login."""
    client = mqtt_client(
        relay.url,
        username,
        username=username,
        password=SECRETS[username],
        protocol=secured.protocol,
        will=will,
    )
    entered = False
    refused: aiomqtt.MqttError | None = None
    try:
        async with client:
            entered = True
            await relay.down()
    except aiomqtt.MqttError as exc:
        if entered:
            return True  # the DISCONNECT on the way out failed: the link is cut
        refused = exc
    else:
        return True
    assert refused_credentials(refused), refused
    return False


async def test_a_gateway_cannot_leave_a_will_as_another(secured: Secured) -> None:
    """amqtt refuses A's CONNECT with a Will on B's state; Mosquitto takes the login but never
    publishes that Will. B's own Will, cut after A's, does arrive."""
    port = int(secured.url.rsplit(":", 1)[1])
    relays = [Relay(port), Relay(port)]
    states: list[bytes] = []
    b_state = topic(GW_B, Kind.STATE)
    try:
        for relay in relays:
            await relay.up()
        async with secured.service("t-watch") as watcher:
            await watcher.subscribe(b_state, qos=1)

            async def listen() -> None:
                async for message in watcher.messages:
                    states.append(bytes(message.payload))  # type: ignore[arg-type]  # noqa: PERF401

            listener = asyncio.create_task(listen(), name="state-watcher")
            try:
                forged_will = aiomqtt.Will(b_state, b"forged by a", qos=1)
                took_a = await _connect_and_cut(secured, relays[0], GW_A, forged_will)
                assert took_a is (secured.mosquitto is not None)
                own_will = aiomqtt.Will(b_state, b"b's own will", qos=1)
                assert await _connect_and_cut(secured, relays[1], GW_B, own_will)
                await wait_until(as_async(lambda: states), 15, "B's own Will")
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
    finally:
        for relay in relays:
            await relay.close()
    assert states == [b"b's own will"]


# ---- A client id is its login's: nobody else takes its session or pushes it off --------------

A_CMD, B_CMD = topic(GW_A, Kind.CMD), topic(GW_B, Kind.CMD)
DELIVERY_S = 10.0  # how long a command may take to arrive before it counts as lost


async def heard_until(client: aiomqtt.Client, topic_name: str, payload: bytes) -> list[str]:
    """The topics `client` is sent up to and including `payload` on `topic_name`."""
    heard: list[str] = []
    async with asyncio.timeout(DELIVERY_S):
        async for message in client.messages:
            heard.append(message.topic.value)
            if message.topic.value == topic_name and message.payload == payload:
                return heard
    raise AssertionError(f"the connection ended before {payload!r} arrived; heard {heard}")


@contextlib.asynccontextmanager
async def b_with_a_client_id(secured: Secured) -> AsyncIterator[aiomqtt.Client | None]:
    """Gateway B, logged in with its own credentials, asks for A's client id and a persistent
    session; None if the broker refuses the CONNECT."""
    async with contextlib.AsyncExitStack() as stack:
        b: aiomqtt.Client | None = None
        refused: aiomqtt.MqttError | None = None
        try:
            b = await stack.enter_async_context(
                secured.client(GW_A, GW_B, SECRETS[GW_B], persistent=True)
            )
        except aiomqtt.MqttError as exc:
            refused = exc
        assert refused is None or refused_credentials(refused), refused
        yield b


@pytest.mark.parametrize("persistent", [False, True], ids=["clean", "persistent"])
async def test_a_refused_connect_with_a_live_gateways_client_id_changes_nothing(
    secured: Secured, persistent: bool
) -> None:
    """A CONNECT with gateway A's client id and a wrong password is refused, and A, connected
    all along, still gets its commands. amqtt 0.12.1 acted on the id before the login: a clean
    session deleted A's subscriptions, a persistent one pushed A off, and the plugin dropped
    A's topic grants."""
    async with (
        secured.service("t-cloud") as cloud,
        secured.client(GW_A, GW_A, SECRETS[GW_A], persistent=True) as a,
    ):
        await a.subscribe(A_CMD, qos=1)
        with pytest.raises(aiomqtt.MqttError) as refused:
            async with secured.client(GW_A, GW_A, "not-the-password-of-a", persistent=persistent):
                pass
        assert refused_credentials(refused.value), refused.value
        await cloud.publish(A_CMD, b"after the refused connect", qos=1)
        assert await heard_until(a, A_CMD, b"after the refused connect") == [A_CMD]


async def test_a_gateway_cannot_take_another_gateways_client_id(secured: Secured) -> None:
    """B logs in as itself with A's client id and a persistent session: amqtt refuses it,
    Mosquitto's gateway listener gives it its own id. Either way A, online, is not pushed off,
    and a command queued while A is offline waits for A: B never receives it. Before, B took
    A's session: amqtt handed B A's queued command, Mosquitto pushed A off and dropped it."""
    async with secured.service("t-cloud") as cloud:
        async with secured.client(GW_A, GW_A, SECRETS[GW_A], persistent=True) as a:
            await a.subscribe(A_CMD, qos=1)
            async with b_with_a_client_id(secured):
                await cloud.publish(A_CMD, b"while B is around", qos=1)
                assert await heard_until(a, A_CMD, b"while B is around") == [A_CMD]
        await cloud.publish(A_CMD, b"queued for A", qos=1)
        async with b_with_a_client_id(secured) as b:
            if b is not None:
                await b.subscribe(B_CMD, qos=1)
                await cloud.publish(B_CMD, b"marker", qos=1)
                assert await heard_until(b, B_CMD, b"marker") == [B_CMD]
            assert b is None or secured.mosquitto is not None  # amqtt refuses it
        async with secured.client(GW_A, GW_A, SECRETS[GW_A], persistent=True) as a:
            assert await heard_until(a, A_CMD, b"queued for A") == [A_CMD]


async def test_cloud_processes_share_a_login_each_with_a_session_of_its_own(
    secured: Secured,
) -> None:
    """The API's ingest, standalone workers and the CLI's sender log in as one service, each
    with a client id of its own (on Mosquitto, at the services' listener), so none pushes
    another off: both hear what a gateway sends after both connected."""
    a_up = topic(GW_A, Kind.TELEMETRY)
    async with (
        secured.service("one") as one,
        secured.service("two") as two,
        secured.client(GW_A, GW_A, SECRETS[GW_A]) as a,
    ):
        for cloud in (one, two):
            await cloud.subscribe(a_up, qos=1)
        await a.publish(a_up, b"to both", qos=1)
        for cloud in (one, two):
            assert await heard_until(cloud, a_up, b"to both") == [a_up]


def run_export(database_url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`anju cloud broker-auth export` into tmp_path, as an installer (or the timer) runs it."""
    env = {**os.environ, "ANJU_ENV": "development", "ANJU_DATABASE_URL": database_url}
    files = ["--password-file", str(tmp_path / "passwd"), "--acl-file", str(tmp_path / "acl")]
    command = [sys.executable, "-m", "anju", "cloud", "broker-auth", "export", *files, *extra]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result


async def test_mosquitto_picks_up_a_new_gateway_after_export_and_sighup(
    database_url: str, tmp_path: Path
) -> None:
    """The real command writes the files and signals Mosquitto; the new gateway gets in. Logins
    Mosquitto cannot take are named: no credential, or an old scrypt hash to rotate."""
    register_all(database_url)
    new_secret = "secret-of-the-new-one-0123"
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            old = register_gateway(session, "gw-old")
            old.credential_hash = f"scrypt$16384$8$1${'00' * 16}${'11' * 64}"
        first = await asyncio.to_thread(run_export, database_url, tmp_path)
        assert "no credential, cannot log in: gw-bare" in first.stderr
        assert "needs a credential rotation" in first.stderr
        assert first.stderr.count("gw-old") == 1
        passwd, acl = tmp_path / "passwd", tmp_path / "acl"
        assert "gw-old" not in passwd.read_text() + acl.read_text()
        assert passwd.stat().st_mode & 0o777 == 0o640
        async with private_mosquitto(tmp_path, password_file=passwd, acl_file=acl) as broker:
            new = Secured(broker.url, broker.services_url, "5", database_url, tmp_path, broker)

            async def admitted() -> bool:
                try:
                    async with new.client("gw-new", "gw-new", new_secret):
                        return True
                except aiomqtt.MqttError:
                    return False

            assert not await admitted()
            with make_sessionmaker(engine).begin() as session:
                register_gateway(session, "gw-new", credential=new_secret)
            pid = str(broker.process.pid)
            second = await asyncio.to_thread(
                run_export, database_url, tmp_path, "--reload-pid", pid
            )
            assert f"sent SIGHUP to {pid}" in second.stdout
            await wait_until(admitted, 10, "Mosquitto to admit the new gateway", poll_s=0.2)
            unchanged = await asyncio.to_thread(
                run_export, database_url, tmp_path, "--reload-pid", pid
            )
            assert "files unchanged" in unchanged.stdout
            assert "SIGHUP" not in unchanged.stdout
    finally:
        engine.dispose()
