"""A simulated meter → gateway → MQTT → cloud ingest → database → HTTP API, all real."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from anju.sim.meters import SimMeter, tcp_server
from cloud.app import create_app
from cloud.ingest.store import register_gateway
from cloud.meter_bindings import rebind
from cloud.security.crypto import development_keys
from edge.config import MeterDevice, ModbusBus
from edge.gateway import run_gateway
from edge.meters.profiles import load_profile
from tests.cloud.world import PASSWORD, build_world
from tests.conftest import free_port
from tests.e2e.link_harness import Link

pytestmark = pytest.mark.timeout(60)

T0 = 1_750_000_000.0  # the simulated meter's frozen clock: values are exactly predictable


async def wait_for_reading(
    http: httpx.AsyncClient, url: str, deadline_s: float
) -> dict[str, object]:
    async with asyncio.timeout(deadline_s):
        while True:
            resp = await http.get(url)
            assert resp.status_code == 200, resp.text
            page: dict[str, object] = resp.json()
            if page["items"]:
                return page
            await asyncio.sleep(0.1)  # real processes on real sockets: nothing to drive


async def login(http: httpx.AsyncClient, username: str) -> None:
    body = {"username": username, "password": PASSWORD}
    resp = await http.post("/api/v1/auth/login", json=body)
    assert resp.status_code == 200, resp.text
    http.headers["Authorization"] = f"Bearer {resp.json()['token']}"


async def test_reading_travels_from_meter_to_api(link: Link) -> None:
    with link.sessions() as session:
        world = build_world(session, development_keys())  # meters, users and scopes; commits
    meter_id = world.sites["P1"].meter_id
    foreign_meter = world.sites["P3"].meter_id
    with link.sessions.begin() as session:  # the link's gateway is P1's, serving its meter
        register_gateway(session, link.gateway_id, property_id=world.sites["P1"].property_id)
        rebind(session, link.gateway_id, bind=[meter_id], unbind=[])

    profile = load_profile("eastron-sdm120")
    modbus_port = free_port()
    server = tcp_server([SimMeter(profile, unit_id=7, clock=lambda: T0)], "127.0.0.1", modbus_port)
    serving = asyncio.create_task(server.serve_forever(), name="sim-meters")

    bus = ModbusBus(
        name="bus-1",
        tcp=f"127.0.0.1:{modbus_port}",
        poll_interval_s=0.5,
        devices=[MeterDevice(id=meter_id, unit_id=7, profile="eastron-sdm120")],
    )
    config = link.config.model_copy(update={"buses": [bus]})
    app = create_app(link.settings())
    gateway = None
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://anju.test"
            ) as http,
        ):
            await asyncio.wait_for(app.state.ingest.ready.wait(), 10)
            assert (await http.get(f"/api/v1/meters/{meter_id}/readings")).status_code == 401
            await login(http, "user-manager")  # a manager scoped to P1
            foreign = await http.get(f"/api/v1/meters/{foreign_meter}/readings")
            assert foreign.status_code == 404
            gateway = asyncio.create_task(run_gateway(config), name="gateway")
            page = await wait_for_reading(
                http, f"/api/v1/meters/{meter_id}/readings?point=voltage", deadline_s=30
            )
            energy = (
                await http.get(f"/api/v1/meters/{meter_id}/readings?point=total_energy")
            ).json()
    finally:
        if gateway is not None:
            gateway.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gateway
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        await server.shutdown()

    (reading,) = page["items"][:1]  # type: ignore[index]
    assert reading["value"] == 230.0
    assert reading["unit"] == "V"
    assert reading["gateway_id"] == link.gateway_id
    assert energy["items"][0]["value"] == 1000.0
