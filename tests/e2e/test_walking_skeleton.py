"""A simulated meter → gateway → MQTT → cloud ingest → database → HTTP API, all real."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import httpx
import pytest

from anju.sim.meters import SimMeter, tcp_server
from cloud.app import create_app
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.store import register_gateway
from cloud.security.crypto import development_keys
from edge.config import GatewayConfig
from edge.gateway import run_gateway
from edge.meters.profiles import load_profile
from tests.cloud.world import PASSWORD, build_world
from tests.conftest import free_port, mqtt_protocol

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


async def test_reading_travels_from_meter_to_api(
    mqtt_url: str, database_url: str, tmp_path: Path
) -> None:
    gateway_id = f"gw-{uuid.uuid4().hex[:8]}"
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        world = build_world(session, development_keys())  # meters, users and scopes; commits
    with make_sessionmaker(engine).begin() as session:
        register_gateway(session, gateway_id, "test building")
    engine.dispose()
    meter_id = world.sites["P1"].meter_id
    foreign_meter = world.sites["P3"].meter_id

    profile = load_profile("eastron-sdm120")
    modbus_port = free_port()
    server = tcp_server([SimMeter(profile, unit_id=7, clock=lambda: T0)], "127.0.0.1", modbus_port)
    serving = asyncio.create_task(server.serve_forever(), name="sim-meters")

    config = GatewayConfig.model_validate(
        {
            "gateway_id": gateway_id,
            "mqtt": {"url": mqtt_url, "protocol": mqtt_protocol(mqtt_url)},
            "store": {"path": str(tmp_path / "gateway.db")},
            "buses": [
                {
                    "name": "bus-1",
                    "tcp": f"127.0.0.1:{modbus_port}",
                    "poll_interval_s": 0.5,
                    "devices": [{"id": meter_id, "unit_id": 7, "profile": "eastron-sdm120"}],
                }
            ],
        }
    )
    settings = Settings(
        env="development",
        database_url=database_url,
        mqtt_url=mqtt_url,
        mqtt_protocol=mqtt_protocol(mqtt_url),
    )
    app = create_app(settings)
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
    assert reading["gateway_id"] == gateway_id
    assert energy["items"][0]["value"] == 1000.0
