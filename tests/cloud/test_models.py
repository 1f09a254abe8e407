"""Portfolio, meters, tenants and leases on the real databases; no personal number in plaintext."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.models import Lease, LeaseTenant, Meter, MeterKind, Tenant, Utility
from cloud.security import pii
from cloud.security.crypto import FieldKeys
from tests.cloud.conftest import add_lease, add_portfolio, add_tenant
from tests.cloud.world import cn_id

SECRETS = {
    "id_number": cn_id(123),
    "phone": "13912345678",
    "bank_card": "6217000010012345678",
}


def test_meters_bind_to_a_unit_or_a_building(session: Session) -> None:
    prop, bld, unit = add_portfolio(session)
    common = {
        "org_id": prop.org_id,
        "property_id": prop.id,
        "building_id": bld.id,
        "utility": Utility.ELECTRICITY,
    }
    session.add(
        Meter(code="m-0001", unit_id=unit.id, kind=MeterKind.SUBMETER, profile="x", **common)
    )
    session.add(Meter(code="m-0002", unit_id=None, kind=MeterKind.MASTER, profile="x", **common))
    session.flush()
    session.add(Meter(code="m-0003", unit_id=None, kind=MeterKind.SUBMETER, profile="x", **common))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_lease_with_co_tenants_and_money_checks(session: Session, keys: FieldKeys) -> None:
    prop, _bld, unit = add_portfolio(session)
    a = add_tenant(session, keys, prop, id_number=cn_id(1))
    b = add_tenant(session, keys, prop, name="李四", id_number=cn_id(2), phone=None, bank_card=None)
    lease = add_lease(session, unit, a)
    session.add(LeaseTenant(lease_id=lease.id, tenant_id=b.id))
    session.commit()
    assert session.scalars(select(LeaseTenant.tenant_id)).all() == [b.id]
    lease.rent_fen = -1
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_exact_lookup_by_blind_index(session: Session, keys: FieldKeys) -> None:
    prop, _bld, _unit = add_portfolio(session)
    t = add_tenant(session, keys, prop, phone="138 0013 8000")
    session.commit()
    found = session.scalars(
        select(Tenant).where(Tenant.phone_bidx == pii.index_of(keys, "phone", "+8613800138000"))
    ).all()
    assert [x.id for x in found] == [t.id]
    assert pii.masked(t, keys, "phone") == "138****8000"


def _pg_dump(url: str) -> bytes:
    parsed = make_url(url)
    schema = parsed.query["options"]
    assert isinstance(schema, str)
    schema = schema.split("=", 1)[1]
    env = {**os.environ, "PGPASSWORD": parsed.password or ""}
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is needed to inspect what PostgreSQL stores"
    return subprocess.run(
        [
            pg_dump,
            "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432),
            "-U", parsed.username or "postgres", "-n", schema, "--data-only", str(parsed.database),
        ],
        check=True, capture_output=True, env=env, timeout=60,
    ).stdout  # fmt: skip


def test_raw_database_holds_no_plaintext_personal_numbers(
    session: Session, keys: FieldKeys, database_url: str
) -> None:
    prop, _bld, unit = add_portfolio(session)
    tenant = add_tenant(session, keys, prop, **SECRETS)
    add_lease(session, unit, tenant)
    session.commit()
    session.close()
    for field, value in SECRETS.items():
        assert pii.reveal(tenant, keys, field) == value  # type: ignore[arg-type]
    if database_url.startswith("sqlite"):
        path = Path(str(make_url(database_url).database))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    else:
        raw = _pg_dump(database_url)
    assert "张三".encode() in raw  # the dump is real: it does hold the (unencrypted) name
    for value in SECRETS.values():
        assert value.encode() not in raw
        assert value[-8:].encode() not in raw  # not even a tail


def test_lease_defaults(session: Session, keys: FieldKeys) -> None:
    prop, _bld, unit = add_portfolio(session)
    lease = add_lease(session, unit, add_tenant(session, keys, prop))
    session.commit()
    again = session.get(Lease, lease.id)
    assert again is not None
    assert (again.status, again.due_days_before, again.proration) == ("draft", 7, "calendar_days")
