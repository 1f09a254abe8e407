"""A run bills the month as it was loaded: a tariff or reading written to the database after
the snapshot is taken (an operator's edit, a late gateway) does not change what it bills."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.billing.service.runs import bill_month
from cloud.billing.service.snapshot import load_month
from cloud.billing.service.terms import Month, day_after, day_start
from cloud.models import InvoiceLine, LineKind, Reading, Tariff, Utility
from tests.cloud.billing.world import TZ, World

NOW = datetime(2026, 2, 1, 2, 0, tzinfo=UTC)
FEB = Month(2026, 2)


def utility_lines(session: Session) -> dict[str, InvoiceLine]:
    q = select(InvoiceLine).where(InvoiceLine.kind == LineKind.UTILITY)
    return {line.meter_key: line for line in session.scalars(q)}


@pytest.fixture
def world(session: Session) -> World:
    """January usage: e-a 100 kWh over the whole month, e-b 40 kWh from a lease's start on
    16 January (a boundary inside the month), at a flat 0.50 yuan."""
    w = World(session)
    a, b = w.unit("A-101", "50"), w.unit("A-102", "30")
    w.meter("e-a", a, digits=None)
    w.meter("e-b", b, digits=None)
    w.read("e-a", date(2026, 1, 1), 1000)
    w.read("e-a", date(2026, 2, 1), 1100)
    w.read("e-b", date(2026, 1, 16), 2000)
    w.read("e-b", date(2026, 2, 1), 2040)
    w.lease(a, date(2026, 1, 1), date(2026, 12, 31), rent=300000)
    w.lease(b, date(2026, 1, 16), date(2026, 12, 31), rent=250000)
    w.tariff([{"lower": "0", "upper": "", "price": "0.50"}])
    session.flush()
    return w


def test_tariff_and_readings_changed_after_loading_do_not_change_the_run(
    session: Session, world: World
) -> None:
    snap = load_month(session, world.prop.id, FEB, TZ)
    session.execute(update(Tariff).values(tiers=[{"lower": "0", "upper": "", "price": "0.90"}]))
    session.execute(update(Reading).where(Reading.value == 1100).values(value=1500))
    session.execute(update(Reading).where(Reading.value == 2000).values(value=1990))
    session.expire_all()  # anything still bound to the session would now read the new rows

    bill_month(session, snap, now=NOW)

    got = utility_lines(session)
    assert (got["e-a"].amount_fen, got["e-a"].quantity) == (5000, Decimal(100))
    assert (got["e-a"].previous_reading, got["e-a"].current_reading) == (
        Decimal(1000),
        Decimal(1100),
    )
    assert (got["e-b"].amount_fen, got["e-b"].quantity) == (2000, Decimal(40))
    assert got["e-b"].previous_reading == 2000
    # The changes did land: the next snapshot reads them.
    fresh = load_month(session, world.prop.id, FEB, TZ)
    assert fresh.tariffs[Utility.ELECTRICITY].tiers[0]["price"] == "0.90"
    feb_1 = day_after(date(2026, 1, 31), TZ)
    assert fresh.readings.at("e-a", "import_energy", feb_1) == 1500
    assert fresh.readings.at("e-b", "import_energy", day_start(date(2026, 1, 16), TZ)) == 1990


def test_the_snapshot_s_tariffs_and_readings_are_read_only(session: Session, world: World) -> None:
    snap = load_month(session, world.prop.id, FEB, TZ)
    tariff = snap.tariffs[Utility.ELECTRICITY]
    with pytest.raises(TypeError):
        tariff.tiers[0]["price"] = "0.90"  # type: ignore[index]
    with pytest.raises(TypeError):
        snap.tariffs[Utility.WATER] = tariff  # type: ignore[index]
    feb_1 = day_after(date(2026, 1, 31), TZ)
    with pytest.raises(TypeError):
        snap.readings.values["import_energy", feb_1]["e-a"] = 1  # type: ignore[index]
