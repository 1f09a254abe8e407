"""Broker logins and ACL: what checking them costs, against the same broker without them.

Run: `python -m bench broker_auth` (env: BENCH_AUTH_MESSAGES, default 3000). In one process,
alternating: the embedded amqtt anonymous (baseline) and with the registry plugin. Measures
CONNECTs per second (each login checked against the registry: a DB read and PBKDF2) and QoS 1
messages per second from a gateway to a service subscriber (each PUBLISH and delivery checked
against the connection's grants). Also the hash check alone: PBKDF2 (now) and scrypt (before).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt

from anju.broker import embedded_broker
from bench.bench_link import free_port
from cloud import migrate
from cloud.broker_accounts import register_service
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.store import register_gateway
from cloud.security.broker_credentials import hash_credential, verify_credential

MESSAGES = int(os.environ.get("BENCH_AUTH_MESSAGES", "3000"))
CONNECTS = 50
ROUNDS = 3
GATEWAY, GATEWAY_SECRET = "gw-bench", "bench-gateway-secret-0123"
SERVICE, SERVICE_SECRET = "bench-service", "bench-service-secret-0123"
TOPIC = f"anju/v1/{GATEWAY}/up/telemetry"
PAYLOAD = b'{"schema":1,"pad":"' + b"x" * 200 + b'"}'


def client(port: int, identifier: str, username: str, password: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        identifier=identifier,
        username=username,
        password=password,
        protocol=aiomqtt.ProtocolVersion.V311,
    )


async def connects_per_s(port: int) -> float:
    started = time.perf_counter()
    for i in range(CONNECTS):
        async with client(port, f"bench-c{i}", GATEWAY, GATEWAY_SECRET):
            pass
    return CONNECTS / (time.perf_counter() - started)


async def messages_per_s(port: int) -> float:
    async with (
        client(port, "bench-sub", SERVICE, SERVICE_SECRET) as sub,
        client(port, "bench-pub", GATEWAY, GATEWAY_SECRET) as pub,
    ):
        await sub.subscribe("anju/v1/+/up/#", qos=1)

        async def receive() -> None:
            got = 0
            async for _ in sub.messages:
                got += 1
                if got == MESSAGES:
                    return

        started = time.perf_counter()
        receiver = asyncio.create_task(receive(), name="bench-receive")
        for _ in range(MESSAGES):
            await pub.publish(TOPIC, PAYLOAD, qos=1)
        await asyncio.wait_for(receiver, 120)
        return MESSAGES / (time.perf_counter() - started)


async def on_broker(database_url: str | None, measure: Callable[[int], Awaitable[float]]) -> float:
    port = free_port()
    async with embedded_broker("127.0.0.1", port, database_url=database_url):
        return await measure(port)


def hash_check_ms(stored: str, runs: int) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        assert verify_credential(GATEWAY_SECRET, stored)
    return (time.perf_counter() - started) * 1000 / runs


def scrypt_hash() -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(GATEWAY_SECRET.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${2**14}$8$1${salt.hex()}${digest.hex()}"


async def run(database_url: str) -> None:
    for name, measure in (("CONNECT", connects_per_s), ("QoS 1 message", messages_per_s)):
        anonymous: list[float] = []
        checked: list[float] = []
        for _ in range(ROUNDS):
            anonymous.append(await on_broker(None, measure))
            checked.append(await on_broker(database_url, measure))
        a, c = statistics.median(anonymous), statistics.median(checked)
        print(
            f"{name + 's/s':<18} anonymous {a:>8.1f}  registry {c:>8.1f}  ratio {c / a:.2f}"
            f"  (runs: {[round(x) for x in anonymous]} / {[round(x) for x in checked]})"
        )


def main() -> None:
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'cloud.db'}"
        migrate.upgrade(url)
        engine = make_engine(url)
        with make_sessionmaker(engine).begin() as session:
            register_gateway(session, GATEWAY, credential=GATEWAY_SECRET)
            register_service(session, SERVICE, SERVICE_SECRET, datetime.now(UTC))
        engine.dispose()
        print(f"hash check: PBKDF2 {hash_check_ms(hash_credential(GATEWAY_SECRET), 100):.2f} ms,"
              f" scrypt (before) {hash_check_ms(scrypt_hash(), 20):.2f} ms")  # fmt: skip
        asyncio.run(run(url))
    print(f"load average at end: {os.getloadavg()}")
