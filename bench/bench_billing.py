"""A monthly billing run for 100,000 leases with utility lines, on PostgreSQL.

Seeds 100 properties x 1,000 units (tenants, leases, submeters and one master per building,
two readings per meter, a tiered tariff) and January's bills as already issued, then times the
February runs of every property: March rent, January electricity per unit and the common-area
shares. Baseline, in the same process and database: a raw executemany INSERT of as many invoice
lines as the runs created. Goal: the runs in <= 60 s.

ANJU_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test) - a fresh schema is
made and dropped; ANJU_BENCH_LEASES (default 100000) scales it down for a quick look;
ANJU_BENCH_WORKERS (default 1, the monthly job's default) properties billed at once.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from cloud import migrate
from cloud.billing.service.terms import day_start
from cloud.db import make_engine, make_sessionmaker
from cloud.db.bulk import insert_rows
from cloud.jobs.billing import run_month
from cloud.models import (
    Base,
    BillingRun,
    Building,
    Gateway,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Lease,
    LeaseStatus,
    LineKind,
    Meter,
    MeterKind,
    Organisation,
    Property,
    Reading,
    Tariff,
    TariffKind,
    Tenant,
    Unit,
    Utility,
)

URL = os.environ.get("ANJU_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
LEASES = int(os.environ.get("ANJU_BENCH_LEASES", "100000"))
WORKERS = int(os.environ.get("ANJU_BENCH_WORKERS", "1"))  # the job's default
PER_PROPERTY = 1000
NOW = datetime(2026, 2, 1, 2, 0, tzinfo=UTC)
TZ = ZoneInfo("Asia/Shanghai")  # ANJU_TIMEZONE's default
TIERS = [
    {"lower": "0", "upper": "200", "price": "0.55"},
    {"lower": "200", "upper": "400", "price": "0.60"},
    {"lower": "400", "upper": "", "price": "0.85"},
]


def _ids(session: Session, model: type, rows: list[dict[str, object]]) -> list[int]:
    result = session.execute(
        insert(model).returning(model.id, sort_by_parameter_order=True),  # type: ignore[attr-defined]
        rows,
    )
    return [r[0] for r in result]


def seed(session: Session) -> list[int]:
    org = Organisation(name="Bench Org")
    session.add(org)
    session.flush()
    n_props = max(1, LEASES // PER_PROPERTY)
    props = _ids(
        session,
        Property,
        [
            {"org_id": org.id, "name": f"P{p}", "city": "Shenzhen", "address": ""}
            for p in range(n_props)
        ],
    )
    blds = _ids(session, Building, [{"property_id": p, "name": "A", "floors": 30} for p in props])
    # each property's gateway serves its meters: billing takes their readings from it only
    session.add_all(Gateway(id=f"gw-{p}", name="bench", property_id=p) for p in props)
    session.flush()
    units, tenants, meters, leases = [], [], [], []
    for p, b in zip(props, blds, strict=True):
        for u in range(PER_PROPERTY):
            units.append(
                {
                    "property_id": p,
                    "building_id": b,
                    "code": f"U{u:04d}",
                    "floor": u // 40 + 1,
                    "area_m2": Decimal(30 + u % 50),
                    "layout": "",
                    "base_rent_fen": 200000,
                    "status": "occupied",
                }
            )
            tenants.append(
                {
                    "org_id": org.id,
                    "property_id": p,
                    "name": f"T{p}-{u}",
                    "id_doc_type": "cn_id",
                    "id_number_enc": b"x",
                    "id_number_bidx": f"{p}-{u}",
                    "created_at": NOW,
                }
            )
    unit_ids = _ids(session, Unit, units)
    tenant_ids = _ids(session, Tenant, tenants)
    rows = []
    for i, (unit, uid, tid) in enumerate(zip(units, unit_ids, tenant_ids, strict=True)):
        meters.append(
            {
                "org_id": org.id,
                "code": f"e{uid}",
                "gateway_id": f"gw-{unit['property_id']}",
                "property_id": unit["property_id"],
                "building_id": unit["building_id"],
                "unit_id": uid,
                "kind": "submeter",
                "utility": "electricity",
                "profile": "eastron-sdm120",
                "digits": 6,
            }
        )
        leases.append(
            {
                "org_id": org.id,
                "property_id": unit["property_id"],
                "unit_id": uid,
                "primary_tenant_id": tid,
                "status": LeaseStatus.ACTIVE,
                "start_date": date(2026, 1, 1),
                "end_date": date(2026, 12, 31),
                "occupant_count": 1 + i % 3,
                "rent_fen": 150000 + (i % 20) * 10000,
                "deposit_fen": 150000,
                "payment_cycle_months": 1,
                "due_days_before": 7,
                "proration": "calendar_days",
                "termination_reason": "",
                "created_at": NOW,
            }
        )
    for p, b in zip(props, blds, strict=True):
        meters.append(
            {
                "org_id": org.id,
                "code": f"master{b}",
                "gateway_id": f"gw-{p}",
                "property_id": p,
                "building_id": b,
                "unit_id": None,
                "kind": MeterKind.MASTER,
                "utility": Utility.ELECTRICITY,
                "profile": "eastron-sdm630",
                "digits": 9,
            }
        )
    session.execute(insert(Meter), meters)
    lease_ids = _ids(session, Lease, leases)
    session.add_all(
        Tariff(
            property_id=p,
            utility=Utility.ELECTRICITY,
            effective_from=date(2025, 1, 1),
            kind=TariffKind.TIERED,
            tiers=TIERS,
            point="import_energy",
            common_basis="area",
            common_price="0.60",
        )
        for p in props
    )
    # two readings per meter: the starts of January and of February
    seq = 0
    masters: dict[object, int] = {}
    gateway_of = {b: f"gw-{p}" for p, b in zip(props, blds, strict=True)}
    for unit, uid in zip(units, unit_ids, strict=True):
        used = 80 + uid % 400
        masters[unit["building_id"]] = masters.get(unit["building_id"], 0) + used
        for day, value in ((date(2026, 1, 1), 1000), (date(2026, 2, 1), 1000 + used)):
            seq += 1
            rows.append(
                {
                    "gateway_id": f"gw-{unit['property_id']}",
                    "seq": seq,
                    "meter_id": f"e{uid}",
                    "point": "import_energy",
                    "value": float(value),
                    "unit": "kWh",
                    "quality": "good",
                    "ts": day_start(day, TZ) - timedelta(minutes=1),
                }
            )
    for b, used in masters.items():
        for day, value in ((date(2026, 1, 1), 10**6), (date(2026, 2, 1), 10**6 + used * 21 // 20)):
            seq += 1
            rows.append(
                {
                    "gateway_id": gateway_of[b],
                    "seq": seq,
                    "meter_id": f"master{b}",
                    "point": "import_energy",
                    "value": float(value),
                    "unit": "kWh",
                    "quality": "good",
                    "ts": day_start(day, TZ) - timedelta(minutes=1),
                }
            )
    session.execute(insert(Reading), rows)
    # January's bills as already issued: deposit + January rent, and February rent
    invoices = []
    for lease, lid in zip(leases, lease_ids, strict=True):
        invoices.append(
            {
                "number": f"JAN-{lid}",
                "property_id": lease["property_id"],
                "lease_id": lid,
                "run_id": None,
                "issue_date": date(2026, 1, 1),
                "due_date": date(2026, 1, 1),
                "total_fen": 3 * lease["rent_fen"],
                "paid_fen": 0,
                "status": InvoiceStatus.OPEN,
                "late_fee_fen": 0,
                "created_at": NOW,
            }
        )
    invoice_ids = _ids(session, Invoice, invoices)
    lines = []
    for lease, lid, iid in zip(leases, lease_ids, invoice_ids, strict=True):
        for kind, start, end in (
            (LineKind.DEPOSIT, date(2026, 1, 1), date(2026, 12, 31)),
            (LineKind.RENT, date(2026, 1, 1), date(2026, 1, 31)),
            (LineKind.RENT, date(2026, 2, 1), date(2026, 2, 28)),
        ):
            lines.append(
                {
                    "invoice_id": iid,
                    "lease_id": lid,
                    "kind": kind,
                    "meter_key": "",
                    "period_start": start,
                    "period_end": end,
                    "amount_fen": lease["rent_fen"],
                    "description": "seed",
                    "detail": {},
                }
            )
    session.execute(insert(InvoiceLine), lines)
    session.commit()
    return props


def raw_inserts(session: Session, count: int) -> tuple[float, float]:
    """The baselines: `count` invoice lines as one executemany INSERT (SQLAlchemy Core, batched
    VALUES) and as one COPY, each committed."""
    invoice_id, lease_id = session.execute(select(Invoice.id, Invoice.lease_id).limit(1)).one()

    def rows(tag: str) -> list[dict[str, object]]:
        return [
            {
                "invoice_id": invoice_id,
                "lease_id": lease_id,
                "kind": LineKind.ADJUSTMENT,
                "meter_key": f"{tag}-{i}",
                "period_start": date(2026, 2, 1),
                "period_end": date(2026, 2, 28),
                "amount_fen": 100,
                "description": "raw insert",
                "utility": "electricity",
                "previous_reading": Decimal(1000),
                "current_reading": Decimal(1100),
                "quantity": Decimal(100),
                "detail": {},
            }
            for i in range(count)
        ]

    table = Base.metadata.tables["invoice_lines"]
    batch = rows("insert")
    started = time.perf_counter()
    session.connection().execute(insert(table), batch)
    session.commit()
    insert_s = time.perf_counter() - started
    batch = rows("copy")
    started = time.perf_counter()
    insert_rows(session, table, batch)
    session.commit()
    return insert_s, time.perf_counter() - started


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    print(f"load average at start: {load()}")
    progress = logging.getLogger("cloud.jobs.billing")
    progress.setLevel(logging.INFO)
    progress.addHandler(logging.StreamHandler(sys.stdout))
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in URL else "?"
    url = f"{URL}{sep}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    try:
        migrate.upgrade(url)
        sessions = make_sessionmaker(engine)
        started = time.perf_counter()
        with sessions() as session:
            props = seed(session)
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
            before = session.scalar(select(func.count()).select_from(InvoiceLine)) or 0
        print(
            f"seeded {LEASES:,} leases in {len(props)} properties "
            f"in {time.perf_counter() - started:.1f} s"
        )
        print(f"billing runs with {WORKERS} worker(s), as the monthly job runs them:")
        started = time.perf_counter()
        run_month(sessions, "2026-02", now=NOW, tz=TZ, workers=WORKERS)
        run_s = time.perf_counter() - started
        with sessions() as session:
            lines = (session.scalar(select(func.count()).select_from(InvoiceLine)) or 0) - before
            invoices = session.scalar(select(func.sum(BillingRun.invoices_created))) or 0
            kinds = dict(
                session.execute(
                    select(InvoiceLine.kind, func.count())
                    .where(InvoiceLine.description != "seed")
                    .group_by(InvoiceLine.kind)
                ).all()
            )
            insert_s, copy_s = raw_inserts(session, lines)
        goal = ("met" if run_s <= 60 else "MISSED") if LEASES >= 100_000 else "scaled down"
        mix = ", ".join(f"{k}: {v:,}" for k, v in sorted(kinds.items()))
        print(
            f"billing runs: {invoices:,} invoices, {lines:,} lines ({mix}) in {run_s:.1f} s "
            f"= {lines / run_s:,.0f} lines/s (goal <= 60 s for 100k leases: {goal})"
        )
        for what, took in (("executemany INSERT", insert_s), ("COPY", copy_s)):
            print(
                f"baseline {what} of {lines:,} invoice lines: {took:.1f} s "
                f"= {lines / took:,.0f} lines/s; the runs take {run_s / took:.1f}x that"
            )
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
