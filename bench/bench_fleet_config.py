"""Remote configuration pushed to a fleet: the time from the push until every gateway has
applied it and the cloud has stored that in the gateway's row, for a fleet of FLEET gateways in
this one process, against the same push to one gateway (the baseline, same process, first).

Run: `python -m bench fleet_config` (env: BENCH_FLEET, default 500). Each gateway is the real
`run_gateway` with its own store; the config gives it a bus with one meter of the Modbus
simulator (polled at once, then hourly) and new link limits. The cloud side is the real ingest
worker on a SQLite file; the push stores each gateway's new version, signs it and publishes it
retained over one connection. Broker: Mosquitto on 127.0.0.1:1883 when it answers (MQTT 5),
else the embedded amqtt (MQTT 3.1.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from anju.sim.meters import make_meters, tcp_server
from bench.bench_link import broker, free_port
from cloud import migrate
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker
from cloud.fleet import remote_config
from cloud.ingest.store import register_gateway
from cloud.ingest.worker import IngestWorker
from cloud.models import Gateway
from cloud.mqtt import cloud_mqtt_client
from edge.config import CommandSettings, GatewayConfig
from edge.gateway import run_gateway
from edge.meters.profiles import load_profile
from protocols.mqtt import commands as cmd
from protocols.mqtt.downlink import encode_config
from protocols.mqtt.topics import Kind, topic
from runtime.mqtt_client import connection

FLEET = int(os.environ.get("BENCH_FLEET", "500"))
GOAL_S = 30.0
KEY = Ed25519PrivateKey.generate()
SETTLE_S = 300.0  # the most a step may take before the bench gives up


class Sim:
    """One simulated meter (unit 1) on a free port: every gateway's bus points at it."""

    def __init__(self) -> None:
        self.port = free_port()
        meters = make_meters(load_profile("eastron-sdm120"), 1, time.monotonic)
        self.server = tcp_server(meters, "127.0.0.1", self.port)


def body(sim_port: int) -> dict[str, Any]:
    return {
        "buses": [
            {"name": "bus", "tcp": f"127.0.0.1:{sim_port}", "poll_interval_s": 3600,
             "timeout_s": 5, "devices": [{"id": "m1", "unit_id": 1, "profile": "eastron-sdm120"}]}
        ],
        "link": {"batch_kb": 64},
    }  # fmt: skip


def gateway_config(gid: str, tmp: Path, url: str, protocol: str) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "gateway_id": gid,
            "mqtt": {"url": url, "protocol": protocol},
            "store": {"path": str(tmp / gid / "gateway.db")},
            # no session kept at the broker after the bench; reports only when something changes
            "link": {"session_expiry_s": 0, "state_interval_s": 3600, "health_interval_s": 3600},
            "commands": CommandSettings(public_key=cmd.public_key_text(KEY.public_key())),
        }
    )


class Fleet:
    def __init__(self, tmp: Path, url: str, protocol: str, database_url: str) -> None:
        self.tmp, self.url, self.protocol = tmp, url, protocol
        self.sessions = make_sessionmaker(make_engine(database_url))
        self.tasks: list[asyncio.Task[None]] = []
        self.settings = Settings(
            env="development",
            database_url=database_url,
            mqtt_url=url,
            mqtt_protocol=protocol,
            ingest_share_group=f"bench{uuid.uuid4().hex[:8]}",
        )

    def count(self, ids: list[str], **where: Any) -> int:
        with self.sessions() as session:
            query = select(func.count()).select_from(Gateway).where(Gateway.id.in_(ids))
            for column, value in where.items():
                query = query.where(getattr(Gateway, column) == value)
            return int(session.scalar(query) or 0)

    async def until(self, ids: list[str], **where: Any) -> float:
        started = time.perf_counter()
        while self.count(ids, **where) < len(ids):
            if time.perf_counter() - started > SETTLE_S:
                raise TimeoutError(f"{self.count(ids, **where)} of {len(ids)} after {SETTLE_S} s")
            await asyncio.sleep(0.05)
        return time.perf_counter() - started

    async def start(self, ids: list[str]) -> float:
        with self.sessions.begin() as session:
            for gid in ids:
                register_gateway(session, gid)
        for gid in ids:
            config = gateway_config(gid, self.tmp, self.url, self.protocol)
            config.store.path.parent.mkdir(parents=True)
            self.tasks.append(asyncio.create_task(run_gateway(config), name=f"gateway-{gid}"))
        return await self.until(ids, online=True)

    async def push(self, ids: list[str], config_body: dict[str, Any]) -> tuple[int, float]:
        """Store, sign and publish each gateway's next version; (version, seconds until every
        gateway's row says it applied)."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        with self.sessions.begin() as session:
            configs = [
                remote_config.add_version(session, gid, config_body, by="bench", now=now)[1]
                for gid in ids
            ]
        client = cloud_mqtt_client(self.settings, f"bench-push-{uuid.uuid4().hex[:8]}")
        async with connection(client):
            for config in configs:
                payload = encode_config(config, KEY)
                name = topic(config.gateway_id, Kind.CONFIG)
                await client.publish(name, payload, qos=1, retain=True)
        version = configs[0].version
        await self.until(ids, config_version=version)
        return version, time.perf_counter() - started

    async def clear(self, ids: list[str]) -> None:
        """The retained configs off the broker (a shared Mosquitto keeps them otherwise)."""
        client = cloud_mqtt_client(self.settings, f"bench-clear-{uuid.uuid4().hex[:8]}")
        async with connection(client):
            for gid in ids:
                await client.publish(topic(gid, Kind.CONFIG), b"", qos=1, retain=True)
                await client.publish(topic(gid, Kind.STATE), b"", qos=1, retain=True)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()


@contextlib.asynccontextmanager
async def running(tmp: Path) -> AsyncIterator[tuple[Fleet, int]]:
    database_url = f"sqlite:///{tmp / 'cloud.db'}"
    migrate.upgrade(database_url)
    sim = Sim()
    await sim.server.serve_forever(background=True)
    async with broker() as (url, protocol):
        fleet = Fleet(tmp, url, protocol, database_url)
        worker = IngestWorker(fleet.settings, fleet.sessions)
        ingest = asyncio.create_task(worker.run(), name="ingest")
        try:
            await asyncio.wait_for(worker.ready.wait(), 10)
            print(f"broker {url} (MQTT {protocol}), database SQLite")
            yield fleet, sim.port
        finally:
            await fleet.stop()
            ingest.cancel()
            await asyncio.gather(ingest, return_exceptions=True)
            await sim.server.shutdown()  # type: ignore[no-untyped-call]


async def run(tmp: Path) -> None:
    run_id = uuid.uuid4().hex[:6]
    one = [f"bench-{run_id}-one"]
    many = [f"bench-{run_id}-{i:04d}" for i in range(FLEET)]
    async with running(tmp) as (fleet, sim_port):
        try:
            await fleet.start(one)
            _, baseline = await fleet.push(one, body(sim_port))
            up = await fleet.start(many)
            print(f"{FLEET} gateways connected and reporting in {up:.1f} s")
            _, took = await fleet.push(many, body(sim_port))
        finally:
            await fleet.stop()  # each says offline, retained: cleared next
            await fleet.clear(one + many)
    print(f"push to 1 gateway (baseline): {baseline:.3f} s to applied and reported")
    print(
        f"push to {FLEET} gateways: {took:.2f} s to all applied and reported"
        f" (goal <= {GOAL_S:.0f} s: {'met' if took <= GOAL_S else 'MISSED'}),"
        f" ratio {took / baseline:.1f} vs one; per gateway {took / FLEET / baseline:.3f}"
    )


def main() -> None:
    for name in ("cloud.ingest.worker", "edge", "runtime", "pymodbus", "anju.sim"):
        logging.getLogger(name).setLevel(logging.ERROR)  # 500 gateways' info and others' traffic
    print(f"fleet: {FLEET} gateways in this process")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp)))
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
