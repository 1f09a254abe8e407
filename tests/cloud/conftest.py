"""Cloud fixtures: field keys, sessions on the migrated test databases, a small portfolio."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from cloud.db import make_engine, make_sessionmaker
from cloud.models import Building, Lease, Organisation, Property, Tenant, Unit
from cloud.security import pii
from cloud.security.crypto import FieldKeys, generate_key

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


def cn_id(serial: int) -> str:
    """A valid-looking resident ID (Beijing, born 1990-01-01) with a correct check character."""
    first17 = f"11010119900101{serial % 1000:03d}"
    return first17 + pii.cn_id_check_char(first17)


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
    tenant = Tenant(org_id=prop.org_id, property_id=prop.id, name=name, created_at=NOW)
    pii.set_pii(tenant, keys, "id_number", id_number or cn_id(1))
    pii.set_pii(tenant, keys, "phone", phone)
    pii.set_pii(tenant, keys, "bank_card", bank_card)
    session.add(tenant)
    session.flush()
    return tenant


def add_lease(session: Session, unit: Unit, tenant: Tenant) -> Lease:
    lease = Lease(
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
