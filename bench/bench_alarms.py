"""One evaluation of every alarm rule over 100,000 meters, on PostgreSQL.

Seeds 100 properties x 1,000 units, one submeter per unit behind 100 online gateways, three
readings per meter in the last hour (an energy counter and a voltage) and door events; 1% of
the meters have been silent for hours, 0.5% send bad readings, 1% of the vacant units' meters
count. Times the first evaluation (raises those alarms and their work orders) and the next one
(nothing changed: the steady state the job runs every two minutes). Baseline, in the same
process and database: one query asking, per meter, whether it sent a reading in the window
(the cheapest form of the silent-meter rule alone). Goal: an evaluation in <= 10 s.

ANJU_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test) - a fresh schema is
made and dropped; ANJU_BENCH_METERS (default 100000) scales it down for a quick look.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import exists, func, insert, select, text
from sqlalchemy.orm import Session

from cloud import migrate
from cloud.db import make_engine, make_sessionmaker, scratch_schema
from cloud.db.bulk import insert_rows
from cloud.maintenance import rules
from cloud.models import (
    Base,
    Building,
    Gateway,
    Meter,
    Organisation,
    Property,
    Reading,
    UnitStatus,
    WorkOrder,
)

URL = os.environ.get("ANJU_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
METERS = int(os.environ.get("ANJU_BENCH_METERS", "100000"))
PER_PROPERTY = 1000
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def seed(session: Session) -> None:
    org = Organisation(name="bench")
    session.add(org)
    session.flush()
    props = max(1, METERS // PER_PROPERTY)
    for p in range(props):
        prop = Property(org_id=org.id, name=f"P{p}")
        session.add(prop)
        session.flush()
        bld = Building(property_id=prop.id, name="A", floors=30)
        gw = Gateway(id=f"gw-{p}", property_id=prop.id, online=True, last_seen=NOW, state_ts=NOW)
        session.add_all([bld, gw])
        session.flush()
        units = [
            {"property_id": prop.id, "building_id": bld.id, "code": f"{p}-{u}", "floor": 1,
             "area_m2": Decimal(40), "layout": "", "base_rent_fen": 100000,
             "status": UnitStatus.VACANT if u % 10 == 0 else UnitStatus.OCCUPIED}
            for u in range(PER_PROPERTY)
        ]  # fmt: skip
        unit_ids = session.scalars(
            insert(Base.metadata.tables["units"]).returning(text("id")), units
        ).all()
        meters = [
            {"org_id": org.id, "code": f"m-{p}-{u}", "property_id": prop.id,
             "building_id": bld.id, "unit_id": uid, "kind": "submeter",
             "utility": "electricity", "profile": "eastron-sdm120", "gateway_id": gw.id}
            for u, uid in enumerate(unit_ids)
        ]  # fmt: skip
        insert_rows(session, Base.metadata.tables["meters"], meters)
        insert_rows(session, Base.metadata.tables["readings"], readings(gw.id, p))
        insert_rows(session, Base.metadata.tables["events"], events(gw.id))
    session.commit()


def readings(gateway: str, p: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    seq = 0
    for u in range(PER_PROPERTY):
        code = f"m-{p}-{u}"
        silent = u % 100 == 1
        bad = u % 200 == 2
        counting = u % 100 == 10  # a vacant unit (u % 10 == 0) whose meter moves
        for n in range(3):
            ts = NOW - timedelta(minutes=10 + 15 * n, hours=5 if silent else 0)
            seq += 1
            value = 1000.0 - (5 * n if counting else 0)
            rows.append({"gateway_id": gateway, "epoch": 1, "seq": seq, "meter_id": code,
                         "point": "import_energy", "value": value, "unit": "kWh",
                         "quality": "good", "ts": ts, "text": None})  # fmt: skip
            seq += 1
            rows.append({"gateway_id": gateway, "epoch": 1, "seq": seq, "meter_id": code,
                         "point": "voltage", "value": 0.0 if bad else 230.0, "unit": "V",
                         "quality": "bad" if bad else "good", "ts": ts, "text": None})  # fmt: skip
    return rows


def events(gateway: str) -> list[dict[str, object]]:
    return [
        {"gateway_id": gateway, "epoch": 1, "seq": 10_000_000 + i, "type": "lock.event",
         "source": "door", "ts": NOW - timedelta(minutes=i), "data": {"door": f"d{i % 40}",
         "event": "opened" if i % 50 else "forced_open"}}
        for i in range(200)
    ]  # fmt: skip


def baseline(session: Session) -> float:
    since = NOW - timedelta(minutes=15)
    heard = exists().where(
        Reading.meter_id == Meter.code, Reading.gateway_id == Meter.gateway_id, Reading.ts > since
    )
    started = time.perf_counter()
    session.scalar(select(func.count()).select_from(Meter).where(~heard))
    return time.perf_counter() - started


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    print(f"load average at start: {load()}")
    with scratch_schema(URL, "bench") as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(url)
            sessions = make_sessionmaker(engine)
            started = time.perf_counter()
            with sessions() as session:
                seed(session)
                session.execute(text("ANALYZE"))
                session.commit()
                n_readings = session.scalar(select(func.count()).select_from(Reading))
            print(f"seeded {METERS:,} meters, {n_readings:,} readings "
                  f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
            timings = []
            for label in ("first (raises)", "second (steady)"):
                with sessions() as session:
                    started = time.perf_counter()
                    out = rules.evaluate(session, NOW)
                    session.commit()
                    took = time.perf_counter() - started
                timings.append(took)
                fired = ", ".join(f"{k} +{v.raised}" for k, v in out.items() if v.raised)
                print(f"evaluation {label}: {took:.2f} s; {fired or 'no change'}")
            with sessions() as session:
                orders = session.scalar(select(func.count()).select_from(WorkOrder))
                base = baseline(session)
            worst = max(timings)
            goal = ("met" if worst <= 10 else "MISSED") if METERS >= 100_000 else "scaled down"
            print(f"work orders opened: {orders:,}")
            print(f"baseline (one silent-meter probe per meter): {base:.2f} s; "
                  f"an evaluation takes {worst / base:.1f}x that "
                  f"(goal <= 10 s for 100k meters: {goal})")  # fmt: skip
        finally:
            engine.dispose()
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
