"""Cloud fixtures: field keys, sessions on the migrated test databases, a small portfolio."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from cloud.app import create_app
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker
from cloud.models import Building, Lease, Organisation, Property, Role, Tenant, Unit
from cloud.people import new_tenant
from cloud.security.crypto import FieldKeys, generate_key
from tests.cloud.world import COMMAND_KEY, World, build_world, cn_id
from tests.cloud.world import NOW as WORLD_NOW

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def keys() -> FieldKeys:
    return FieldKeys(current="k1", keys={"k1": generate_key()}, index_key=generate_key())


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as s:
            yield s
    finally:
        engine.dispose()


def add_portfolio(session: Session, name: str = "Org") -> tuple[Property, Building, Unit]:
    org = Organisation(name=name)
    session.add(org)
    session.flush()
    prop = Property(org_id=org.id, name=f"{name} P1", city="Shenzhen")
    session.add(prop)
    session.flush()
    bld = Building(property_id=prop.id, name="A", floors=10)
    session.add(bld)
    session.flush()
    unit = Unit(
        property_id=prop.id,
        building_id=bld.id,
        code="A-101",
        floor=1,
        area_m2=Decimal("35.50"),
        layout="1室1厅",
        base_rent_fen=180000,
    )
    session.add(unit)
    session.flush()
    return prop, bld, unit


def add_tenant(
    session: Session,
    keys: FieldKeys,
    prop: Property,
    *,
    name: str = "张三",
    id_number: str | None = None,
    phone: str | None = "13800138000",
    bank_card: str | None = "6222020200112233445",
) -> Tenant:
    tenant = new_tenant(
        session, keys, prop, name=name, id_number=id_number or cn_id(1), now=NOW,
        phone=phone, bank_card=bank_card,
    )  # fmt: skip
    session.flush()
    return tenant


def add_lease(session: Session, unit: Unit, tenant: Tenant) -> Lease:
    lease = Lease(
        org_id=session.get_one(Property, unit.property_id).org_id,
        property_id=unit.property_id,
        unit_id=unit.id,
        primary_tenant_id=tenant.id,
        start_date=date(2026, 3, 1),
        end_date=date(2027, 2, 28),
        rent_fen=180000,
        deposit_fen=180000,
        payment_cycle_months=3,
        created_at=NOW,
    )
    session.add(lease)
    session.flush()
    return lease


class Clock:
    """A driven clock for the app: tests move it instead of sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Api:
    client: httpx.AsyncClient
    world: World
    clock: Clock
    sessions: sessionmaker[Session]

    def as_role(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.world.tokens[role]}"}


@pytest.fixture
async def api(database_url: str, keys: FieldKeys) -> AsyncIterator[Api]:
    """A real app on a migrated database (SQLite, and PostgreSQL when configured)."""
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        world = build_world(s, keys)
    clock = Clock(WORLD_NOW)
    settings = Settings(env="development", database_url=database_url, ingest_in_process=False)
    app = create_app(settings, sessions=sessions, keys=keys, clock=clock, command_key=COMMAND_KEY)
    try:
        async with serve(app) as client:
            yield Api(client, world, clock, sessions)
    finally:
        engine.dispose()


@asynccontextmanager
async def serve(
    app: FastAPI,
    port: int = 4000,
    *,
    host: str = "198.51.100.7",
    asgi: Callable[..., Awaitable[None]] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan, and a client whose requests come from `host`:`port`; they reach
    `asgi` when given (the app as a server wraps it)."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=asgi or app, client=(host, port)),
            base_url="http://anju.test",
        ) as client,
    ):
        yield client
