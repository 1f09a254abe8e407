"""A meter's readings are the ones its bound gateway sends: what another gateway sends under
the meter's id is quarantined by ingest and ignored by billing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.billing.service.runs import run_billing
from cloud.billing.service.terms import day_start
from cloud.ingest.store import store_batch
from cloud.models import (
    Gateway,
    InvoiceLine,
    Lease,
    LineKind,
    Meter,
    Quarantine,
    Reading,
    TariffKind,
)
from protocols.mqtt import messages as msg
from tests.cloud.billing.world import TZ, World

NOW = datetime(2026, 2, 1, 2, 0, tzinfo=UTC)
FLAT = [{"lower": "0", "upper": "", "price": "1.00"}]
FEB_1 = day_start(date(2026, 2, 1), TZ)
HONEST = (150, 15000)  # 1,000 -> 1,150 kWh at 1.00


@pytest.fixture
def two_properties(session: Session) -> tuple[World, World, Meter, Lease]:
    """Property 1 and property 2 of one organisation, each with its gateway; property 2's
    tenant used 150 kWh in January."""
    p1 = World(session, "Binding Org")
    p1.meter("e-101", p1.unit("A-101", "40"))
    p2 = World(session, org=p1.org)
    unit = p2.unit("B-201", "40")
    meter = p2.meter("e-201", unit)
    p2.tariff(FLAT, kind=TariffKind.FLAT)
    lease = p2.lease(unit, date(2026, 1, 1), date(2026, 12, 31), rent=200000)
    p2.read(meter, date(2026, 1, 1), 1000)
    p2.read(meter, date(2026, 2, 1), 1150)
    session.flush()
    return p1, p2, meter, lease


def january_utility(session: Session, w: World, lease: Lease) -> tuple[int, int]:
    run_billing(session, w.prop.id, "2026-01", now=NOW, tz=TZ)
    run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ)
    (line,) = session.scalars(
        select(InvoiceLine).where(
            InvoiceLine.lease_id == lease.id, InvoiceLine.kind == LineKind.UTILITY
        )
    )
    assert line.quantity is not None
    return int(line.quantity), line.amount_fen


def test_another_propertys_gateway_cannot_write_a_meters_readings(
    session: Session, two_properties: tuple[World, World, Meter, Lease]
) -> None:
    """Property 1's gateway sends a reading 5,000 kWh higher for property 2's meter (500,000
    fen more on that tenant's bill) beside one of its own meter's: the foreign one goes to
    quarantine, its own is stored, both are acknowledged, and the bill is the honest one."""
    p1, p2, _meter, lease = two_properties
    late = FEB_1 - timedelta(seconds=1)
    attack = msg.Telemetry(
        gateway_id=p1.gateway,
        epoch=0,
        seq=2,
        ts=late,
        after=0,
        readings=[
            msg.Reading(seq=1, meter="e-201", point="import_energy", value=6150, ts=late),
            msg.Reading(seq=2, meter="e-101", point="import_energy", value=7, ts=late),
        ],
    )
    topic = f"anju/v1/{p1.gateway}/up/telemetry"
    result = store_batch(session, [(topic, attack)], [], NOW)
    assert result.acks == {(p1.gateway, 0): 2}
    assert result.stored == 1
    (held,) = session.scalars(select(Quarantine))
    assert (held.topic, held.reason) == (topic, "foreign_meter")
    assert "e-201" in held.detail
    assert "e-101" not in held.detail
    stored = session.scalars(select(Reading.meter_id).where(Reading.gateway_id == p1.gateway))
    assert list(stored) == ["e-101"]
    assert january_utility(session, p2, lease) == HONEST


def test_billing_takes_a_meters_readings_from_its_bound_gateway_only(
    session: Session, two_properties: tuple[World, World, Meter, Lease]
) -> None:
    """Readings under the meter's id from any other gateway (another property's, an unplaced
    one: stored before a rebinding, or by a gateway the cloud knew no meter of) bill nothing."""
    p1, p2, meter, lease = two_properties
    session.add(Gateway(id="gw-unplaced", name="in a box"))
    session.flush()
    for n, gateway in enumerate((p1.gateway, "gw-unplaced"), start=1):
        session.add(
            Reading(
                gateway_id=gateway,
                seq=10**6 + n,
                meter_id=meter.code,
                point="import_energy",
                value=6150.0,
                unit="kWh",
                ts=FEB_1 - timedelta(seconds=n),
            )
        )
    session.flush()
    assert january_utility(session, p2, lease) == HONEST


def test_a_meter_bound_to_no_gateway_has_no_readings(
    session: Session, two_properties: tuple[World, World, Meter, Lease]
) -> None:
    _p1, p2, meter, lease = two_properties
    meter.gateway_id = None
    session.flush()
    run_billing(session, p2.prop.id, "2026-01", now=NOW, tz=TZ)
    run = run_billing(session, p2.prop.id, "2026-02", now=NOW, tz=TZ)
    assert any("e-201" in flag and "no import_energy reading" in flag for flag in run.flags)
    kinds = session.scalars(select(InvoiceLine.kind).where(InvoiceLine.lease_id == lease.id))
    assert LineKind.UTILITY not in set(kinds)
