"""What a restore drill creates and compares: realistic data, row digests, decrypted PII."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from itertools import count

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cloud.db import make_engine, make_sessionmaker
from cloud.models import Base, Organisation, Reading, Tenant
from cloud.security import pii
from cloud.security.crypto import FieldKeys
from tests.cloud.billing.world import World as BillingWorld
from tests.cloud.world import NOW, add_site, build_world

Digest = dict[str, tuple[int, str]]


def create_data(session: Session, keys: FieldKeys) -> None:
    """Two organisations' tenants (encrypted PII), leases, invoices, payments, commands, and
    a metered building with a month of daily readings."""
    build_world(session, keys)
    more_readings(session, "Readings Org", days=30, first_seq=1)


def more_readings(session: Session, org: str, *, days: int, first_seq: int) -> None:
    """A new organisation's metered unit with `days` daily readings (seqs from `first_seq`)."""
    world = BillingWorld(session, org)
    world.seq = count(first_seq)
    unit = world.unit(f"{org}-201", "35.5")
    meter = world.meter(f"m-{org}-201", unit)
    for day in range(days):
        world.read(meter, date(2026, 1, 1) + timedelta(days=day), 1000.0 + 7.25 * day)
    session.commit()


def more_tenants(session: Session, keys: FieldKeys, n: int) -> None:
    """A new site (tenant, lease, invoice) in the first organisation, as business goes on."""
    org = session.scalars(select(Organisation).order_by(Organisation.id)).first()
    assert org is not None
    add_site(session, keys, org, f"N{n}", 3 + n)  # 4 to 9: serials add_site accepts
    session.commit()


def digests(url: str) -> Digest:
    """Per table: the row count and a SHA-256 of its rows in primary-key order."""
    engine = make_engine(url)
    try:
        return table_digests(engine)
    finally:
        engine.dispose()


def table_digests(engine: Engine) -> Digest:
    out: Digest = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            h = hashlib.sha256()
            for row in rows:
                h.update(repr(tuple(row)).encode())
            out[table.name] = (len(rows), h.hexdigest())
    return out


def revealed_pii(url: str, keys: FieldKeys) -> dict[int, tuple[str | None, ...]]:
    """Every tenant's personal data, decrypted (raises if a key is missing or wrong)."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            return {
                t.id: tuple(pii.reveal(t, keys, f) for f in pii.PII_FIELDS)
                for t in session.scalars(select(Tenant).order_by(Tenant.id))
            }
    finally:
        engine.dispose()


def writer_reading(gateway_id: str, seq: int) -> Reading:
    """A reading as ingest would store it."""
    return Reading(gateway_id=gateway_id, epoch=7, seq=seq, meter_id="m-live",
                   point="import_energy", value=float(seq), unit="kWh",
                   ts=NOW + timedelta(seconds=seq))  # fmt: skip
