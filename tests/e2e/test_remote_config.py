"""Remote configuration over the real link: configs signed with the cloud's key go through the
broker on `down/config` (retained) to `run_gateway`, which applies a new poll interval at once,
refuses what its schema or its signature check refuses while the previous configuration keeps
running, and reports the applied version or the error in `up/state`, which ingest stores."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.app import create_app
from cloud.fleet import remote_config
from cloud.ingest.store import register_gateway
from cloud.ingest.worker import IngestWorker
from cloud.models import Gateway
from cloud.security.crypto import development_keys
from edge.config import ModbusBus
from protocols.mqtt.downlink import Config, encode_config
from protocols.mqtt.topics import Kind, topic
from tests.cloud.world import build_world
from tests.e2e.command_harness import KEY, Clock, gateway
from tests.e2e.link_harness import Link, as_async, mqtt_client, wait_until
from tests.e2e.test_walking_skeleton import login
from tests.edge.conftest import SimFactory, make_bus, tcp_meters

pytestmark = pytest.mark.timeout(90)
__all__ = ["tcp_meters"]  # the simulated meters' fixture


def config(link: Link, version: int, clock: Clock, **fields: Any) -> Config:
    return Config(gateway_id=link.gateway_id, seq=version, version=version, ts=clock.t, **fields)


async def push(link: Link, payload: bytes) -> None:
    async with mqtt_client(link.mqtt_url, f"cfg-{uuid.uuid4().hex[:8]}") as client:
        await client.publish(topic(link.gateway_id, Kind.CONFIG), payload, qos=1, retain=True)


def reported(link: Link) -> tuple[int | None, str | None]:
    with link.sessions() as session:
        gateway = session.get_one(Gateway, link.gateway_id)
        return gateway.config_version, gateway.config_error


async def until_reported(link: Link, version: int | None, error: str | None = None) -> None:
    """The gateway's state says `version` applied and an error containing `error` (or none)."""

    def seen() -> bool:
        got, why = reported(link)
        return got == version and (why is None if error is None else error in (why or ""))

    await wait_until(as_async(seen), 20, f"config version {version}, error {error!r}")


def meters_stored(link: Link) -> dict[str, int]:
    """Readings stored per meter."""
    return dict(Counter(row[1] for row in link.stored()))


def hourly_bus(address: str) -> ModbusBus:
    """One meter polled hourly, so every later reading is the remote interval's."""
    return make_bus({"tcp": address}, [1], "eastron-sdm120", poll_interval_s=3600)


async def test_apply_reject_rollback_and_attacks(link: Link, tcp_meters: SimFactory) -> None:
    clock = Clock()
    sim = await tcp_meters("eastron-sdm120", 1)
    other_key = Ed25519PrivateKey.generate()
    async with link.ingest(), gateway(link, clock, buses=[hourly_bus(sim.address)]):
        await wait_until(as_async(link.stored), 20, "the first poll's readings")
        one_poll = len(link.stored())

        # apply: the hourly bus polls every 0.2 s at once, and version 1 is reported
        await push(link, encode_config(config(link, 1, clock, poll_interval_s={"bus": 0.2}), KEY))
        await until_reported(link, 1)
        await wait_until(
            as_async(lambda: len(link.stored()) >= 3 * one_poll), 20, "polls at the new interval"
        )

        # reject: a bus the gateway does not have; version 1 keeps running
        bad = config(link, 2, clock, poll_interval_s={"nope": 1.0})
        await push(link, encode_config(bad, KEY))
        await until_reported(link, 1, "poll_interval_s.nope: no bus of that name")
        polled = len(link.stored())
        await wait_until(as_async(lambda: len(link.stored()) > polled), 20, "polls after a reject")

        # rollback: version 0's content (nothing remote) as version 3; the file's hour again
        await push(link, encode_config(config(link, 3, clock), KEY))
        await until_reported(link, 3)

        # attacks: another key, another gateway, an older version replayed
        await push(link, encode_config(config(link, 4, clock, state_interval_s=1.0), other_key))
        await until_reported(link, 3, "bad_signature")
        foreign = Config(gateway_id="gw-other", seq=5, version=5, ts=clock.t)
        await push(link, encode_config(foreign, KEY))
        await until_reported(link, 3, "wrong_gateway")
        await push(link, encode_config(config(link, 1, clock, poll_interval_s={"bus": 0.2}), KEY))
        # a config the gateway reports on, published after the replay, is read after it
        await push(link, encode_config(config(link, 6, clock, poll_interval_s={"x": 1.0}), KEY))
        await until_reported(link, 3, "version 6: poll_interval_s.x")
    await push(link, b"")  # clear the retained config

    # a restart applies the stored version 3 before connecting
    with link.sessions.begin() as session:
        session.get_one(Gateway, link.gateway_id).config_version = None
    async with link.ingest(), gateway(link, clock, buses=[hourly_bus(sim.address)]):
        await until_reported(link, 3)


async def test_a_meter_added_remotely_is_polled_and_a_bad_config_keeps_the_old(
    link: Link, tcp_meters: SimFactory
) -> None:
    """Buses and meters from the cloud, on the real broker and the Modbus simulator: a meter
    added to the bus is read, while a bus that did not change keeps its poller; a config whose
    meter cannot be polled is refused with the reason and everything keeps polling."""
    clock = Clock()
    sim = await tcp_meters("eastron-sdm120", 2)
    other = await tcp_meters("eastron-sdm120", 1, first_unit=9)
    bus = make_bus({"tcp": sim.address}, [1], "eastron-sdm120", poll_interval_s=0.2)
    west = make_bus({"tcp": other.address}, [9], "eastron-sdm120", name="west", poll_interval_s=0.2)
    async with link.ingest(), gateway(link, clock, buses=[bus, west]):
        await wait_until(
            as_async(lambda: meters_stored(link).keys() == {"m1", "m9"}), 20, "m1 and m9 polled"
        )
        # m2 added on the first bus, remotely; `west` is the file's, unchanged
        two = make_bus({"tcp": sim.address}, [1, 2], "eastron-sdm120", poll_interval_s=0.2)
        await push(link, encode_config(config(link, 1, clock, buses=[two, west]), KEY))
        await until_reported(link, 1)
        await wait_until(
            as_async(lambda: meters_stored(link).get("m2", 0) > 0), 20, "m2's readings"
        )

        # a meter whose profile the gateway does not have: refused, the reason reported
        bad = two.model_dump(mode="json")
        bad["devices"].append({"id": "m3", "unit_id": 3, "profile": "no-such-meter"})
        await push(link, encode_config(config(link, 2, clock, buses=[bad, west]), KEY))
        await until_reported(link, 1, "version 2: unknown meter profile 'no-such-meter'")
        seen = meters_stored(link)
        await wait_until(
            as_async(lambda: all(meters_stored(link)[m] > seen[m] for m in ("m1", "m2", "m9"))),
            20,
            "every meter of version 1 still polled",
        )
        assert "m3" not in meters_stored(link)
    await push(link, b"")  # clear the retained config


async def test_the_api_validates_publishes_and_shows_drift(
    link: Link, tcp_meters: SimFactory
) -> None:
    with link.sessions() as session:
        world = build_world(session, development_keys())
    with link.sessions.begin() as session:
        register_gateway(session, link.gateway_id, property_id=world.sites["P1"].property_id)
    sim = await tcp_meters("eastron-sdm120", 1)
    app = create_app(link.settings(), command_key=KEY)
    url = f"/api/v1/gateways/{link.gateway_id}/config"
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        await asyncio.wait_for(app.state.ingest.ready.wait(), 10)
        await login(http, "user-manager")  # a manager scoped to P1
        bad = await http.put(url, json={"poll_interval_s": {"bus": 0}})
        assert bad.status_code == 422
        assert "poll_interval_s.bus" in bad.json()["detail"]
        assert (await http.put(url, json={"version": 9})).status_code == 422
        # buses and meters by the gateway's own schema; a profile is a name, never a path
        meter = {"id": "m1", "unit_id": 1, "profile": "../../etc/passwd.yaml"}
        bad = await http.put(url, json={"buses": [{"name": "b", "tcp": "h:1", "devices": [meter]}]})
        assert bad.status_code == 422
        assert "profile must be a profile's name" in bad.json()["detail"]
        bad = await http.put(url, json={"buses": [{"name": "b"}]})
        assert "set exactly one of 'tcp' or 'serial'" in bad.json()["detail"]
        assert (await http.put(url, json={"poll_interval_s": {"b\u0000": 1}})).status_code == 422
        assert (await http.put(url, json={"x": "y" * 40_000})).status_code == 413
        foreign = f"/api/v1/gateways/{world.sites['P3'].gateway_id}/config"
        assert (await http.put(foreign, json={})).status_code == 404
        assert (await http.get(url)).json()["desired"] is None

        async with gateway(link, Clock(), buses=[hourly_bus(sim.address)]):
            put = await http.put(url, json={"poll_interval_s": {"bus": 0.5}})
            assert put.status_code == 200, put.text
            assert (put.json()["published"], put.json()["drift"]) == (True, True)
            await until_reported(link, 1)
        shown = (await http.get(url)).json()
    assert (shown["desired"]["version"], shown["applied_version"]) == (1, 1)
    assert (shown["drift"], shown["error"]) == (False, None)
    await push(link, b"")  # clear the retained config


async def test_a_gateway_behind_its_desired_version_is_sent_it_again(
    link: Link, tcp_meters: SimFactory
) -> None:
    """Drift: the desired version 2 never reached the gateway (the retained message is gone,
    as after a broker lost its store), so its state on connecting says 1; ingest sends 2
    again, once."""
    clock = Clock()
    sim = await tcp_meters("eastron-sdm120", 1)
    worker = IngestWorker(
        link.settings(), link.sessions, resender=remote_config.Resender(lambda: KEY)
    )
    async with link.ingest(worker):
        async with gateway(link, clock, buses=[hourly_bus(sim.address)]):
            await push(link, encode_config(config(link, 1, clock, state_interval_s=30), KEY))
            await until_reported(link, 1)
        await push(link, b"")  # the retained copy is lost
        with link.sessions.begin() as session:
            remote_config.add_version(session, link.gateway_id, {}, by="t", now=clock.t)
            remote_config.add_version(
                session, link.gateway_id, {"state_interval_s": 20}, by="t", now=clock.t
            )
        assert reported(link) == (1, None)
        async with gateway(link, clock, buses=[hourly_bus(sim.address)]):
            await until_reported(link, 2)
    assert worker.configs_resent == 1
    await push(link, b"")  # clear the retained config
