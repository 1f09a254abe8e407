"""Edge-cloud link: outbox → MQTT → ingest → database, against a raw insert of the same rows.

Run: `python -m bench link` (env: BENCH_LINK_ROWS, default 200000; BENCH_LINK_DRAIN_ROWS,
default 1000000). The gateway runs as its own process (`anju edge run`), as in production;
ingest runs in this process. Brokers: Mosquitto on 127.0.0.1:1883 when it answers (MQTT 5),
else the embedded amqtt (MQTT 3.1.1). Databases: a SQLite file, and PostgreSQL when
BENCH_DATABASE_URL (or ANJU_TEST_DATABASE_URL) is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import psutil
import yaml
from sqlalchemy import insert, select, text

from anju.broker import embedded_broker
from cloud import migrate
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.store import register_gateway
from cloud.ingest.worker import IngestWorker
from cloud.models import Reading
from edge.store.outbox import Outbox
from protocols.mqtt.topics import Kind, topic

ROWS = int(os.environ.get("BENCH_LINK_ROWS", "200000"))
DRAIN_ROWS = int(os.environ.get("BENCH_LINK_DRAIN_ROWS", "1000000"))
PG_URL = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("ANJU_TEST_DATABASE_URL")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
METERS = 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def mosquitto_up() -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", 1883)) == 0


def payloads(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "meter": f"m-{i % METERS:03d}",
            "point": "energy",
            "value": i / 100,
            "unit": "kWh",
            "ts": T0 + timedelta(minutes=i // METERS),
        }
        for i in range(start, start + count)
    ]


def fill_outbox(path: Path, rows: int) -> float:
    outbox = Outbox(path)
    started = time.perf_counter()
    try:
        for start in range(0, rows, 12_000):  # an hour of 200 meters per transaction
            outbox.append("reading", payloads(start, min(12_000, rows - start)))
    finally:
        outbox.close()
    return rows / (time.perf_counter() - started)


@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'cloud.db'}"
        migrate.upgrade(url)
        yield url
        return
    assert PG_URL is not None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextlib.asynccontextmanager
async def broker() -> AsyncIterator[tuple[str, str]]:
    if mosquitto_up():
        yield "mqtt://127.0.0.1:1883", "5"
        return
    port = free_port()
    async with embedded_broker("127.0.0.1", port):
        yield f"mqtt://127.0.0.1:{port}", "3.1.1"


def gateway_process(
    tmp: Path, gid: str, url: str, protocol: str, store: Path
) -> subprocess.Popen[bytes]:
    config = {
        "gateway_id": gid,
        "mqtt": {"url": url, "protocol": protocol},
        "store": {"path": str(store)},
    }
    path = tmp / f"{gid}.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.Popen(
        [sys.executable, "-m", "anju", "edge", "run", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def forget_gateway(url: str, protocol: str, gid: str) -> None:
    """Delete the stopped gateway's retained `up/state` (an empty retained message) and, by a
    clean connect with its client id, its session: on the shared Mosquitto every ingest worker
    started later would be handed the state and quarantine it as an unknown gateway."""
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    version = aiomqtt.ProtocolVersion.V5 if protocol == "5" else aiomqtt.ProtocolVersion.V311
    async with aiomqtt.Client(host, int(port), identifier=gid, protocol=version) as c:
        await c.publish(topic(gid, Kind.STATE), b"", qos=1, retain=True)


def raw_insert_rate(url: str, rows: int) -> float:
    """The same rows, plain multi-row INSERTs in 10k-row transactions: the database's pace."""
    engine = make_engine(url)
    gid = f"raw-{uuid.uuid4().hex[:8]}"
    with make_sessionmaker(engine).begin() as session:
        register_gateway(session, gid)
    data = [
        {**p, "gateway_id": gid, "seq": i + 1, "meter_id": p.pop("meter"), "quality": "good"}
        for i, p in enumerate(payloads(0, rows))
    ]
    started = time.perf_counter()
    for start in range(0, rows, 10_000):
        with engine.begin() as conn:
            conn.execute(insert(Reading), data[start : start + 10_000])
    took = time.perf_counter() - started
    engine.dispose()
    return rows / took


async def end_to_end(kind: str, rows: int, *, sample_rss: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as name, database(kind, Path(name)) as url:
        tmp = Path(name)
        gid = f"bench-{uuid.uuid4().hex[:8]}"
        store = tmp / "gateway.db"
        fill_rate = fill_outbox(store, rows)
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as session:
            register_gateway(session, gid)
        result: dict[str, float] = {"outbox_fill_per_s": fill_rate}
        async with broker() as (mqtt_url, protocol):
            settings = Settings(
                env="development",
                database_url=url,
                mqtt_url=mqtt_url,
                mqtt_protocol=protocol,  # type: ignore[arg-type]
                ingest_share_group=f"bench{uuid.uuid4().hex[:8]}",
            )
            worker = IngestWorker(settings, sessions)
            task = asyncio.create_task(worker.run(), name="ingest")
            await asyncio.wait_for(worker.ready.wait(), 10)
            proc = gateway_process(tmp, gid, mqtt_url, protocol, store)
            rss_max = 0
            first: tuple[float, int] | None = None  # (when, how many) at the first stored batch
            try:
                started = time.perf_counter()
                while True:
                    # What ingest has committed; the gateway's mark would not do: it is its
                    # current epoch's, and the filled rows are of the epoch that filled them.
                    stored = worker.metrics.stored
                    if first is None and stored:
                        first = (time.perf_counter(), stored)
                    if sample_rss:
                        with contextlib.suppress(psutil.Error):
                            rss_max = max(rss_max, psutil.Process(proc.pid).memory_info().rss)
                    if stored >= rows:
                        break
                    if time.perf_counter() - started > 900:
                        raise RuntimeError(f"drain stalled at {stored}/{rows}")
                    await asyncio.sleep(0.2)
                took = time.perf_counter() - started
            finally:
                proc.terminate()
                proc.wait(10)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await forget_gateway(mqtt_url, protocol, gid)
        assert first is not None
        result.update(
            rows=rows,
            seconds=took,  # from starting the gateway process: its start-up and connect included
            per_s=rows / took,
            # from the first acknowledged batch on: the link's sustained pace
            sustained_per_s=(rows - first[1]) / (started + took - first[0]),
            duplicates=worker.metrics.duplicates,
            batches=worker.metrics.batches,
        )
        if sample_rss:
            result["gateway_rss_max_mb"] = rss_max / 2**20
        with sessions() as session:
            count = session.scalar(
                select(text("count(*)")).select_from(Reading).where(Reading.gateway_id == gid)
            )
        assert count == rows, f"stored {count} of {rows}"
        engine.dispose()
        result["raw_insert_per_s"] = raw_insert_rate(url, rows)
        result["ratio_to_raw"] = result["per_s"] / result["raw_insert_per_s"]
        result["broker"] = 5.0 if protocol == "5" else 3.1
        return result


def idle_rss(rows: int) -> float:
    """RSS of a gateway holding `rows` buffered readings while its broker is unreachable."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        store = tmp / "gateway.db"
        fill_outbox(store, rows)
        proc = gateway_process(tmp, "bench-idle", f"mqtt://127.0.0.1:{free_port()}", "5", store)
        try:
            time.sleep(8)
            return psutil.Process(proc.pid).memory_info().rss / 2**20
        finally:
            proc.terminate()
            proc.wait(10)


def show(title: str, figures: dict[str, float]) -> None:
    print(f"-- {title}")
    for key, value in figures.items():
        print(f"   {key:>22}: {value:,.2f}")


def main() -> None:
    logging.getLogger("cloud.ingest.worker").setLevel(logging.ERROR)  # other tests' traffic
    print(f"rows per throughput run: {ROWS:,}; drain run: {DRAIN_ROWS:,}")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    kinds = ["sqlite"] + (["postgresql"] if PG_URL else [])
    for kind in kinds:
        show(f"end to end, {kind}", asyncio.run(end_to_end(kind, ROWS)))
    drain_kind = kinds[-1]
    show(
        f"drain {DRAIN_ROWS:,} buffered readings, {drain_kind}",
        asyncio.run(end_to_end(drain_kind, DRAIN_ROWS, sample_rss=True)),
    )
    print(f"-- gateway RSS holding {DRAIN_ROWS:,} readings offline: {idle_rss(DRAIN_ROWS):.1f} MB")
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
