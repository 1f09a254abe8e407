"""Console pages in Debian's chromium with the API benchmark's dataset (100,000 units, 100,000
tenants, 50,000 leases; bench_api.seed) plus a meter per unit, a gateway and a door per building
and door events. A real `anju cloud serve` runs in a subprocess; Playwright signs in as an admin
of the whole organisation and loads each page RUNS times after a warm-up.

Time to first meaningful paint: from the navigation until the page's main content (its first
table row, the board's first unit, the sign-in button) is visible and a frame has been drawn.
Each page's median is printed beside the sign-in page's (loaded signed out), measured in the
same run against the same server (the floor: NiceGUI's page, scripts and WebSocket, no data).
Goal: <= 1 s a page.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, ViewportSize, sync_playwright
from sqlalchemy import insert, select

from bench import bench_api
from cloud import migrate
from cloud.db import make_engine, make_sessionmaker
from cloud.models import (
    Building,
    Category,
    Door,
    DoorScope,
    Event,
    Gateway,
    Meter,
    MeterKind,
    OrderSource,
    OrderState,
    PartStock,
    Priority,
    Property,
    Reading,
    SparePart,
    Unit,
    Utility,
    WorkOrder,
)

RUNS = int(os.environ.get("ANJU_BENCH_CONSOLE_RUNS", "5"))
GOAL_S = 1.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
EVENTS_PER_DOOR = 100
READ_METERS = 1000  # meters with a day of readings (the meters page's first pages)
ORDERS_PER_BUILDING = 20
PARTS = 200  # in every property's store
# path -> what shows the page has drawn its content
PAGES = {
    "/": "button[type=submit]",
    "/board": "[data-testid^=unit-]",
    "/leases": ".nicegui-content .q-table tbody tr",
    "/billing": "[data-testid=ar-total]",
    "/billing/rent-roll": "[data-testid=rent-roll] tbody tr",
    "/meters": "[data-testid=meters] tbody tr",
    "/gateways": "[data-testid=gateways] tbody tr",
    "/doors": "[data-testid=door-events] tbody tr",
    "/work-orders": "[data-testid=orders] tbody tr",
    "/parts": "[data-testid=stock] tbody tr",
    "/audit": "[data-testid=audit-table] tbody tr",
    "/users": "[data-testid=users] tbody tr",
    "/import": "[data-testid=import-upload]",
}


def seed_operations(url: str) -> None:
    """A gateway and a gate door per building, an electricity meter per unit bound to it, a day
    of readings for the first meters, door events, work orders and a store of parts."""
    now = datetime.now(UTC)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        org_id = s.scalars(select(Property.org_id)).first()
        buildings = s.execute(select(Building.id, Building.property_id, Building.name)).all()
        gateways = {b: f"gw-{b}" for b, _, _ in buildings}
        s.execute(
            insert(Gateway),
            [{"id": gateways[b], "name": name, "property_id": p, "building": name,
              "online": True, "last_seen": now} for b, p, name in buildings],
        )  # fmt: skip
        units = s.execute(select(Unit.id, Unit.property_id, Unit.building_id)).all()
        s.execute(
            insert(Meter),
            [{"org_id": org_id, "code": f"e-{u:06d}", "property_id": p, "building_id": b,
              "unit_id": u, "kind": MeterKind.SUBMETER, "utility": Utility.ELECTRICITY,
              "profile": "sdm120", "gateway_id": gateways[b], "digits": 6}
             for u, p, b in units],
        )  # fmt: skip
        s.execute(
            insert(Reading),
            [{"gateway_id": gateways[b], "epoch": 0, "seq": u * 100 + h, "meter_id": f"e-{u:06d}",
              "point": "import_energy", "value": 1000.0 + h, "unit": "kWh", "quality": "good",
              "ts": now - timedelta(hours=24 - h)}
             for u, _, b in units[:READ_METERS] for h in range(24)],
        )  # fmt: skip
        s.execute(
            insert(Door),
            [{"org_id": org_id, "property_id": p, "building_id": b, "scope": DoorScope.BUILDING,
              "gateway_id": gateways[b], "code": "gate", "name": f"{name} gate",
              "secret_enc": b"\0" * 32, "created_at": now} for b, p, name in buildings],
        )  # fmt: skip
        s.execute(
            insert(Event),
            [{"gateway_id": gateways[b], "epoch": 0, "seq": 10**6 + i, "source": "gate",
              "type": "access.refused" if i % 7 == 0 else "access.granted",
              "ts": now - timedelta(minutes=i), "data": {"verdict": "grant"}}
             for b, _, _ in buildings for i in range(EVENTS_PER_DOOR)],
        )  # fmt: skip
        properties = sorted({p for _, p, _ in buildings})
        s.execute(
            insert(WorkOrder),
            [{"org_id": org_id, "property_id": p, "unit_id": u, "category": Category.PLUMBING,
              "priority": Priority.NORMAL, "description": "leak", "state": OrderState.NEW,
              "source": OrderSource.STAFF, "created_at": now - timedelta(minutes=i),
              "updated_at": now - timedelta(minutes=i)}
             for i, (u, p, _) in enumerate(units[: ORDERS_PER_BUILDING * len(buildings)])],
        )  # fmt: skip
        s.execute(
            insert(SparePart),
            [{"org_id": org_id, "code": f"P-{n:04d}", "name": f"part {n}", "unit": "pcs",
              "price_fen": 100 + n, "reorder_level": 5, "active": True} for n in range(PARTS)],
        )  # fmt: skip
        part_ids = s.scalars(select(SparePart.id).where(SparePart.org_id == org_id)).all()
        s.execute(
            insert(PartStock),
            [{"part_id": part, "property_id": p, "quantity": part % 20}
             for part in part_ids for p in properties],
        )  # fmt: skip
        s.commit()
    engine.dispose()


def first_paint(page: Page, url: str, selector: str) -> float:
    t0 = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.locator(selector).first.wait_for(state="visible", timeout=60_000)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(null)))")
    return time.perf_counter() - t0


def measure(base: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            viewport: ViewportSize = {"width": 1400, "height": 900}
            signed_out = browser.new_context(viewport=viewport).new_page()  # for the baseline
            page = browser.new_context(viewport=viewport).new_page()
            page.goto(f"{base}/")
            page.fill("input[name=username]", "bench-admin-0")
            page.fill("input[name=password]", "bench password")
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/board", timeout=60_000)
            floor = None
            for path, selector in PAGES.items():
                tab = signed_out if path == "/" else page
                first_paint(tab, base + path, selector)  # warm-up
                samples = sorted(first_paint(tab, base + path, selector) for _ in range(RUNS))
                median, worst = statistics.median(samples), samples[-1]
                floor = floor or median
                verdict = "" if path == "/" else (" ok" if median <= GOAL_S else " SLOW")
                name = "baseline sign-in /" if path == "/" else path
                print(f"  {name:22s} median {median * 1000:7.0f} ms  worst {worst * 1000:7.0f} ms"
                      f"  median/sign-in {median / floor:5.1f}x{verdict}", flush=True)  # fmt: skip
        finally:
            browser.close()


def main() -> None:
    print(f"  load average at start: {os.getloadavg()}", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="anju-bench-console-") as tmp,
        bench_api.database(tmp) as url,
    ):
        t0 = time.perf_counter()
        migrate.upgrade(url)
        bench_api.seed(url)
        seed_operations(url)
        if url.startswith("postgresql"):
            engine = make_engine(url)
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
            engine.dispose()
        print(f"  seeded {bench_api.UNITS} units and meters, {bench_api.TENANTS} tenants in "
              f"{time.perf_counter() - t0:.0f} s; {RUNS} loads a page", flush=True)  # fmt: skip
        with bench_api.served(url, tmp, ANJU_COOKIE_SECURE="false") as base:
            measure(base)
    print(f"  load average at end: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
