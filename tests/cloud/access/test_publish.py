"""The publisher over a real broker: a gateway gets its list, a change in the records reaches
it at the next poll (every 5 s: within 10 s) without anyone telling the publisher, and a poll
with nothing changed compiles and sends nothing, also the first poll of a restarted publisher.
The poll's wait is driven by the test."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import aiomqtt
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.access.publisher import POLL_S, AccessPublisher
from cloud.access.sync import record_applied
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.store import register_gateway
from cloud.leases import service as leases
from cloud.leases.lifecycle import Action
from cloud.models import GatewayAccess, Lease
from cloud.security.crypto import FieldKeys
from protocols.access.schema import AccessList
from protocols.access.signing import decode_signed
from protocols.mqtt.topics import Kind, topic
from tests.cloud.access.test_sync import TZ, add_door, add_doors
from tests.cloud.world import COMMAND_KEY, NOW, build_world
from tests.conftest import mqtt_protocol
from tests.e2e.link_harness import mqtt_client, stop

ARRIVAL_S = 10.0  # what the product promises an online gateway


async def next_list(messages: aiomqtt.client.MessagesIterator, gateway_id: str) -> AccessList:
    async with asyncio.timeout(ARRIVAL_S):
        message = await anext(messages)
    assert isinstance(message.payload, bytes)
    return decode_signed(message.payload, COMMAND_KEY.public_key(), gateway_id=gateway_id)


class Polls:
    """The publisher's `sleep`: a wait ends when the test lets one poll interval pass."""

    def __init__(self) -> None:
        self._passed: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(self, _: float) -> None:
        await self._passed.get()

    def tick(self) -> None:
        self._passed.put_nowait(None)


async def looked(publisher: AccessPublisher, n: int) -> None:
    async with asyncio.timeout(ARRIVAL_S):
        while publisher.looks < n:  # noqa: ASYNC110 - a counter the publisher's task moves
            await asyncio.sleep(0.01)


async def test_a_change_reaches_an_online_gateway_at_the_next_poll(
    database_url: str, mqtt_url: str, keys: FieldKeys
) -> None:
    assert POLL_S < ARRIVAL_S
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    gateway_id = f"gw-{uuid.uuid4().hex[:10]}"  # a shared broker carries others' tests too
    with sessions() as session:
        site = build_world(session, keys).sites["P1"]
        register_gateway(session, gateway_id, property_id=site.property_id)
        site.gateway_id = gateway_id
        add_doors(session, keys, site)
        session.commit()
    settings = Settings(
        env="development",
        database_url=database_url,
        mqtt_url=mqtt_url,
        mqtt_protocol=mqtt_protocol(mqtt_url),
        ingest_in_process=False,
    )
    polls = Polls()
    publisher = AccessPublisher(
        settings, sessions, keys, lambda: COMMAND_KEY, tz=TZ, now=lambda: NOW, sleep=polls.sleep
    )
    subject = f"tenant:{site.tenant_id}"
    try:
        async with mqtt_client(mqtt_url, f"test-{gateway_id}") as gateway:
            await gateway.subscribe(topic(gateway_id, Kind.ACCESS), qos=1)
            task = asyncio.create_task(publisher.run(), name="access")
            try:
                first = await next_list(gateway.messages, gateway_id)
                assert first.full
                assert subject in {r.subject for r in first.rights}
                await looked(publisher, 1)
                compiled = publisher.compiled  # every gateway of the world with a door
                with sessions.begin() as session:
                    record_applied(session, gateway_id, first.version, NOW)
                    for other in ("gw-P1", "gw-P2", "gw-P3"):
                        row = session.get_one(GatewayAccess, other)
                        record_applied(session, other, row.compiled_version, NOW)
                polls.tick()  # nothing changed
                await looked(publisher, 2)
                assert (publisher.compiled, publisher.published) == (compiled, 4)
                with sessions.begin() as session:
                    end_lease(session, session.get_one(Lease, site.lease_id))
                polls.tick()  # the next poll, without anyone waking the publisher
                change = await next_list(gateway.messages, gateway_id)
                await looked(publisher, 3)
                assert (publisher.compiled, publisher.published) == (compiled + 2, 6)
                with sessions.begin() as session:
                    for row in session.scalars(select(GatewayAccess)):
                        record_applied(session, row.gateway_id, row.compiled_version, NOW)
            finally:
                await stop(task)
            # A restarted publisher compiles nothing that did not move, and a change still
            # reaches the gateway at its next poll.
            restarted = AccessPublisher(
                settings, sessions, keys, lambda: COMMAND_KEY, tz=TZ, now=lambda: NOW,
                sleep=polls.sleep,
            )  # fmt: skip
            task = asyncio.create_task(restarted.run(), name="access-restarted")
            try:
                await looked(restarted, 1)
                assert (restarted.compiled, restarted.published) == (0, 0)
                with sessions.begin() as session:
                    add_door(session, keys, site, "garage")
                polls.tick()
                added = await next_list(gateway.messages, gateway_id)
                await looked(restarted, 2)
                assert (restarted.compiled, restarted.published) == (1, 1)
            finally:
                await stop(task)
    finally:
        engine.dispose()
    assert change.base_version == first.version
    assert subject not in {r.subject for r in change.rights}
    assert any(subject in right for right in change.removed.rights)
    assert (added.base_version, [d.id for d in added.doors]) == (change.version, ["garage"])


def end_lease(session: Session, lease: Lease) -> None:
    today = date(2026, 3, 1)
    leases.apply(session, lease, Action.ACTIVATE, today=today, now=NOW)
    leases.apply(session, lease, Action.TERMINATE, today=today, now=NOW, terminated_on=today,
                 reason="moved out")  # fmt: skip
