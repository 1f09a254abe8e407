"""The embedded broker closes what amqtt leaves open."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aiomqtt
import pytest

from anju.broker import embedded_broker
from cloud.broker_accounts import register_service
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.store import register_gateway
from protocols.mqtt.acl import client_id
from protocols.mqtt.topics import Kind, subscription, topic
from tests.conftest import free_port
from tests.e2e.link_harness import mqtt_client, wait_until

pytestmark = pytest.mark.timeout(30)


async def test_a_client_gone_before_connect_leaves_no_open_socket() -> None:
    """A port probe (connect, then close without CONNECT): amqtt 0.12 never closed its side."""
    port = free_port()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        async with embedded_broker("127.0.0.1", port) as broker:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()

            async def probe_handled() -> bool:
                return not broker._writers

            await wait_until(probe_handled, 10, "the broker to finish with the probe")
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


# ---- Retained messages go only to subscriptions that match them, and may be read -----------

A_CONFIG, A_ACK = topic("gw-a", Kind.CONFIG), topic("gw-a", Kind.DOWN_ACK)
A_DOWN = "anju/v1/gw-a/down/#"
SECRETS = {"gw-a": "secret-of-gateway-a-0123", "gw-b": "secret-of-gateway-b-0123"}
SERVICE, SERVICE_SECRET = "ingest-test", "secret-of-the-ingest-0123"


def _client(
    port: int, identifier: str, login: tuple[str, str] | None = None, *, persistent: bool = False
) -> aiomqtt.Client:
    username, password = login or (None, None)
    return mqtt_client(
        f"mqtt://127.0.0.1:{port}",
        client_id(username, identifier),
        username=username,
        password=password,
        protocol="3.1.1",
        persistent=persistent,
    )


async def _heard(a: aiomqtt.Client, cloud: aiomqtt.Client) -> list[str]:
    """The topics A is sent when it subscribes to its `down/#`, up to a marker. amqtt handles a
    client's packets one at a time and finishes what it sends at CONNECT, and for a SUBSCRIBE,
    before the next: the SUBACK of A's second SUBSCRIBE comes after all of it, and the cloud's
    marker, published then, after that SUBACK."""
    await a.subscribe(A_DOWN, qos=1)
    await a.subscribe(A_ACK, qos=1)
    await cloud.publish(A_ACK, b"marker", qos=1)
    heard: list[str] = []
    async with asyncio.timeout(10):
        async for message in a.messages:
            heard.append(message.topic.value)
            if message.topic.value == A_ACK and message.payload == b"marker":
                break
    return heard


@asynccontextmanager
async def _retained_left(
    port: int, cloud_login: tuple[str, str] | None
) -> AsyncIterator[aiomqtt.Client]:
    """The cloud (connected throughout, holding `anju/v1/+/up/state` as the ingest does) has
    retained A's config; gateways A and B have each retained their `up/state` and gone."""
    async with _client(port, "t-cloud", cloud_login) as cloud:
        await cloud.subscribe(subscription(Kind.STATE), qos=1)
        await cloud.publish(A_CONFIG, b'{"config": 1}', qos=1, retain=True)
        for gid in ("gw-b", "gw-a"):
            login = (gid, SECRETS[gid]) if cloud_login else None
            async with _client(port, f"t-{gid}", login, persistent=True) as gateway:
                await gateway.subscribe(topic(gid, Kind.DOWN_ACK), qos=1)
                await gateway.publish(topic(gid, Kind.STATE), b'{"up": 1}', qos=1, retain=True)
        yield cloud


async def test_a_client_is_sent_only_the_retained_messages_of_its_own_subscriptions() -> None:
    """amqtt 0.12.1 sent a connecting client the retained messages of every filter any client
    held: the cloud's `anju/v1/+/up/state` brought A both gateways' states (the gateway's log:
    "ignoring bad ack ... stored_seq: Field required"). A is to get its config, for its
    `down/#`, and nothing else."""
    port = free_port()
    async with (
        embedded_broker("127.0.0.1", port),
        _retained_left(port, None) as cloud,
        _client(port, "t-gw-a") as a,
    ):
        heard = await _heard(a, cloud)
    assert heard == [A_CONFIG, A_ACK]


@pytest.mark.parametrize("persistent", [False, True], ids=["new-session", "resumed-session"])
async def test_a_gateway_is_never_sent_a_retained_message_it_may_not_read(
    database_url: str, persistent: bool
) -> None:
    """With the registry, gateway A may read only `anju/v1/gw-a/down/#`, yet amqtt 0.12.1 sent
    it B's retained state, and its own, at CONNECT (new session or resumed), past the ACL. As
    on Mosquitto it gets its retained config, for its subscription, and nothing at CONNECT."""
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            for gid, secret in SECRETS.items():
                register_gateway(session, gid, credential=secret)
            register_service(session, SERVICE, SERVICE_SECRET, datetime.now(UTC))
    finally:
        engine.dispose()
    port = free_port()
    a_login = ("gw-a", SECRETS["gw-a"])
    async with (
        embedded_broker("127.0.0.1", port, database_url=database_url),
        _retained_left(port, (SERVICE, SERVICE_SECRET)) as cloud,
        _client(port, "t-gw-a", a_login, persistent=persistent) as a,
    ):
        heard = await _heard(a, cloud)
    assert heard == [A_CONFIG, A_ACK]
