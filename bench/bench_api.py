"""List and search endpoints with 100,000 units and 100,000 tenants, over real HTTP on loopback.

A real `anju cloud serve` runs in a subprocess on a seeded SQLite file (or ANJU_BENCH_DATABASE_URL,
an empty PostgreSQL database/schema). A load generator (httpx, CONCURRENCY requests in flight)
sends REQUESTS requests per endpoint as an admin of all 20 properties (phone searches as several
admins: each user may make only SEARCHES_PER_WINDOW). Each endpoint's p50/p95 is printed
beside two baselines measured in the same run against the same server:
  /healthz   - no database, no auth: the HTTP stack's floor
  /auth/me   - token lookup + scope query: the floor of every guarded route
Target: p95 < 100 ms for every list/search endpoint.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import insert

from cloud import migrate
from cloud.db import make_engine, make_sessionmaker, scratch_schema
from cloud.models import (
    Building,
    Lease,
    Organisation,
    Property,
    Role,
    Tenant,
    Unit,
    User,
)
from cloud.security import pii, tokens
from cloud.security.crypto import development_keys
from cloud.security.passwords import hash_password
from cloud.security.pii_search import SEARCHES_PER_WINDOW

UNITS = int(os.environ.get("ANJU_BENCH_UNITS", "100000"))
TENANTS = int(os.environ.get("ANJU_BENCH_TENANTS", "100000"))
PROPERTIES, BUILDINGS_PER_PROPERTY = 20, 5
REQUESTS = int(os.environ.get("ANJU_BENCH_REQUESTS", "400"))
CONCURRENCY = int(os.environ.get("ANJU_BENCH_CONCURRENCY", "4"))
WARM_UP = 20  # requests per endpoint before measuring
NOW = datetime(2026, 3, 1, tzinfo=UTC)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(url: str) -> tuple[list[str], list[str]]:
    """Bulk rows through SQLAlchemy Core; returns admin tokens (enough for every phone search
    of the run) and some tenants' phones."""
    keys = development_keys()
    rng = random.Random(7)
    engine = make_engine(url)
    phones: list[str] = []
    with make_sessionmaker(engine)() as s:
        org = Organisation(name="Bench")
        s.add(org)
        s.flush()
        props = [Property(org_id=org.id, name=f"P{i}") for i in range(PROPERTIES)]
        s.add_all(props)
        s.flush()
        blds = [
            Building(property_id=p.id, name=f"B{j}")
            for p in props
            for j in range(BUILDINGS_PER_PROPERTY)
        ]
        s.add_all(blds)
        s.flush()
        per_bld = UNITS // len(blds)
        s.execute(
            insert(Unit),
            [
                {
                    "property_id": b.property_id,
                    "building_id": b.id,
                    "code": f"{b.name}-{n:05d}",
                    "floor": n // 20 + 1,
                    "area_m2": Decimal("30.00"),
                    "layout": "1室1厅",
                    "base_rent_fen": 150000 + n,
                    "status": "vacant" if n % 4 else "occupied",
                }
                for b in blds
                for n in range(per_bld)
            ],
        )
        rows = []
        for i in range(TENANTS):
            phone = f"139{i:08d}"
            first17 = f"110101199001{i % 28 + 1:02d}{i % 1000:03d}"
            t = Tenant(
                org_id=org.id,
                property_id=props[i % PROPERTIES].id,
                created_at=NOW,
                name=rng.choice(SURNAMES) + rng.choice(SURNAMES) + f"{i}",
            )
            pii.set_pii(t, keys, "id_number", first17 + pii.cn_id_check_char(first17))
            pii.set_pii(t, keys, "phone", phone)
            pii.set_pii(t, keys, "bank_card", f"6222{i:015d}")
            rows.append(
                {
                    c: getattr(t, c)
                    for c in (
                        "org_id",
                        "property_id",
                        "name",
                        "id_doc_type",
                        "id_number_enc",
                        "id_number_bidx",
                        "phone_enc",
                        "phone_bidx",
                        "bank_card_enc",
                        "bank_card_bidx",
                        "created_at",
                    )
                }
            )
            if i % 997 == 0:
                phones.append(phone)
        s.execute(insert(Tenant), rows)
        s.execute(
            insert(Lease),
            [
                {
                    "org_id": org.id,
                    "property_id": props[i % PROPERTIES].id,
                    "unit_id": i * 2 + 1,
                    "primary_tenant_id": i + 1,
                    "status": "active",
                    "start_date": date(2026, 1, 1),
                    "end_date": date(2026, 12, 31),
                    "occupant_count": 1,
                    "rent_fen": 150000,
                    "deposit_fen": 150000,
                    "payment_cycle_months": 1,
                    "due_days_before": 7,
                    "proration": "calendar_days",
                    "termination_reason": "",
                    "created_at": NOW,
                }
                for i in range(min(UNITS, TENANTS) // 2)
            ],
        )
        signed_in = []
        password_hash = hash_password("bench password")
        for i in range(1 + math.ceil((REQUESTS + WARM_UP) / SEARCHES_PER_WINDOW)):
            admin = User(org_id=org.id, username=f"bench-admin-{i}", role=Role.ADMIN,
                         created_at=NOW, password_hash=password_hash)  # fmt: skip
            s.add(admin)
            s.flush()
            signed_in.append(tokens.issue(s, admin.id, "bearer", datetime.now(UTC))[0])
        s.commit()
    engine.dispose()
    return signed_in, phones


async def wait_ready(base: str, deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < end:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the API server did not come up")


async def measure(
    client: httpx.AsyncClient, urls: list[str], signers: list[str] | None = None
) -> tuple[float, float, int]:
    """Send every URL with CONCURRENCY in flight; (p50 ms, p95 ms, non-200 count). With
    `signers`, each request takes the last token off that list instead of the client's."""
    queue = list(reversed(urls))
    samples: list[float] = []
    bad = 0

    async def worker() -> None:
        nonlocal bad
        while queue:
            url = queue.pop()
            headers = {"Authorization": f"Bearer {signers.pop()}"} if signers else None
            t0 = time.perf_counter()
            r = await client.get(url, headers=headers)
            samples.append((time.perf_counter() - t0) * 1000)
            bad += r.status_code != 200

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))], bad


async def run(base: str, admins: list[str], phones: list[str]) -> None:
    rng = random.Random(3)
    n = REQUESTS
    endpoints: dict[str, list[str]] = {
        "baseline /healthz": ["/healthz"] * n,
        "baseline /auth/me": ["/api/v1/auth/me"] * n,
        "units first page": ["/api/v1/units?limit=50"] * n,
        "units deep page": [
            f"/api/v1/units?after={rng.randrange(UNITS - 100)}&limit=50" for _ in range(n)
        ],
        "units property+status": [
            f"/api/v1/units?property_id={rng.randrange(1, PROPERTIES + 1)}&status=vacant"
            for _ in range(n)
        ],
        "units code search": [
            f"/api/v1/units?q=B{rng.randrange(5)}-00{rng.randrange(100):02d}" for _ in range(n)
        ],
        "tenants first page": ["/api/v1/tenants?limit=50"] * n,
        "tenants name prefix": [
            f"/api/v1/tenants?q={rng.choice(SURNAMES)}{rng.choice(SURNAMES)}" for _ in range(n)
        ],
        "tenants phone exact": [f"/api/v1/tenants?phone={rng.choice(phones)}" for _ in range(n)],
        "leases active page": [
            f"/api/v1/leases?status=active&after={rng.randrange(40000)}" for _ in range(n)
        ],
        "leases of a tenant": [
            f"/api/v1/leases?tenant_id={rng.randrange(1, TENANTS + 1)}" for _ in range(n)
        ],
    }
    headers = {"Authorization": f"Bearer {admins[0]}"}
    searchers = [t for t in admins[1:] for _ in range(SEARCHES_PER_WINDOW)]
    signers = {"tenants phone exact": searchers}
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:
        for name, urls in endpoints.items():  # warm-up: caches, connections, query plans
            await measure(client, urls[:WARM_UP], signers.get(name))
        floor = None
        for name, urls in endpoints.items():
            p50, p95, bad = await measure(client, urls, signers.get(name))
            floor = floor or p95
            verdict = "" if name.startswith("baseline") else (" ok" if p95 < 100 else " SLOW")
            print(
                f"  {name:24s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  "
                f"p95/healthz {p95 / floor:5.1f}x  errors {bad}{verdict}",
                flush=True,
            )


@contextmanager
def database(tmp: str) -> Iterator[str]:
    """A SQLite file, or a fresh schema on ANJU_BENCH_DATABASE_URL (PostgreSQL), dropped after."""
    server = os.environ.get("ANJU_BENCH_DATABASE_URL")
    if not server:
        yield f"sqlite:///{Path(tmp) / 'api.db'}"
        return
    with scratch_schema(server, prefix="bench") as url:
        yield url


@contextmanager
def served(url: str, tmp: str, **extra_env: str) -> Iterator[str]:
    """`anju cloud serve` on the database in a subprocess on a free port, ready; its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "ANJU_ENV": "development",
        "ANJU_DATABASE_URL": url,
        "ANJU_DATA_DIR": tmp,
        "ANJU_INGEST_IN_PROCESS": "false",
        **extra_env,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "anju", "cloud", "serve", "--no-migrate", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(wait_ready(base))
        yield base
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> None:
    print(f"  load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="anju-bench-api-") as tmp, database(tmp) as url:
        t0 = time.perf_counter()
        migrate.upgrade(url)
        admins, phones = seed(url)
        if url.startswith("postgresql"):
            engine = make_engine(url)
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
            engine.dispose()
        print(
            f"  seeded {UNITS} units, {TENANTS} tenants, {min(UNITS, TENANTS) // 2} leases "
            f"in {time.perf_counter() - t0:.0f} s ({url.split(':', 1)[0]}); "
            f"{REQUESTS} requests per endpoint, {CONCURRENCY} in flight",
            flush=True,
        )
        with served(url, tmp) as base:
            asyncio.run(run(base, admins, phones))
    print(f"  load average at end: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
