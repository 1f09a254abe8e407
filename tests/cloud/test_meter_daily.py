"""Daily usage for the console's charts, by billing's own rules (a gap stays a gap, a swap adds
both meters' parts), and a page of meters' health by the alarm rules' thresholds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from cloud.billing.service import daily
from cloud.billing.service.swaps import SwapRequest, record_swap
from cloud.billing.service.terms import day_start
from cloud.maintenance.rules import RuleSettings
from cloud.meter_health import Health, health
from cloud.models import Gateway, Meter, MeterKind, Reading, Utility
from tests.cloud.conftest import add_portfolio

TZ = ZoneInfo("Asia/Shanghai")
FIRST = date(2026, 3, 1)
COUNTER = "import_energy"


def setup(session: Session) -> tuple[Meter, Meter]:
    prop, bld, unit = add_portfolio(session)
    session.add(Gateway(id="gw-d", property_id=prop.id))
    session.flush()
    old, new = (
        Meter(org_id=prop.org_id, code=code, property_id=prop.id, building_id=bld.id,
              unit_id=unit.id, kind=MeterKind.SUBMETER, utility=Utility.ELECTRICITY,
              profile="sdm120", gateway_id="gw-d", digits=6)
        for code in ("e-old", "e-new")
    )  # fmt: skip
    session.add_all([old, new])
    session.flush()
    return old, new


def read(session: Session, meter: Meter, seq: int, at: datetime, value: float | None,
         quality: str = "good") -> None:  # fmt: skip
    session.add(Reading(gateway_id="gw-d", seq=seq, meter_id=meter.code, point=COUNTER,
                        value=value, unit="kWh", quality=quality, ts=at))  # fmt: skip


def before(day: date) -> datetime:
    return day_start(day, TZ) - timedelta(minutes=1)


def test_days_before_the_first_reading_are_gaps(session: Session) -> None:
    """As billing reads a boundary: the latest reading before it; none at all is a gap (not a
    zero), a day with no new reading used nothing."""
    old, _ = setup(session)
    for seq, (day, value) in enumerate([(0, 100.0), (1, 110.0), (2, 125.5)]):
        read(session, old, seq, before(FIRST + timedelta(days=day)), value)
    session.flush()
    assert daily.counter_point(session, old, RuleSettings().counters) == COUNTER
    days = daily.meter_days(session, old, COUNTER, last=date(2026, 3, 3), days=4, tz=TZ)
    assert [(d.day, d.quantity) for d in days] == [
        (date(2026, 2, 28), None),
        (date(2026, 3, 1), Decimal("10.0")),
        (date(2026, 3, 2), Decimal("15.5")),
        (date(2026, 3, 3), Decimal("0.0")),
    ]


def test_the_unit_counts_both_meters_across_a_swap(session: Session) -> None:
    old, new = setup(session)
    for seq, (day, value) in enumerate([(0, 100.0), (1, 110.0), (2, 125.0)]):
        read(session, old, seq, before(FIRST + timedelta(days=day)), value)
    read(session, new, 10, before(FIRST + timedelta(days=3)), 7.0)
    swapped = datetime(2026, 3, 3, 12, tzinfo=TZ)
    swap = SwapRequest(new_meter_id=new.code, swapped_at=swapped, old_final=Decimal(130),
                       new_initial=Decimal(0))  # fmt: skip
    record_swap(session, old, new, swap, now=datetime(2026, 3, 4, tzinfo=UTC))
    session.flush()
    unit = daily.unit_days(session, old, COUNTER, last=date(2026, 3, 3), days=3, tz=TZ)
    assert [d.quantity for d in unit] == [Decimal("10.0"), Decimal("15.0"), Decimal("12.0")]
    alone = daily.meter_days(session, old, COUNTER, last=date(2026, 3, 3), days=3, tz=TZ)
    assert alone[-1].quantity == 0  # the old meter alone sent nothing after the swap


def test_health_by_the_alarm_thresholds(session: Session) -> None:
    old, new = setup(session)
    now = datetime(2026, 3, 10, 2, tzinfo=UTC)
    rules = RuleSettings()
    read(session, old, 1, now - timedelta(minutes=5), 1.0)
    read(session, new, 2, now - timedelta(hours=2), 1.0)
    for seq in range(3, 3 + rules.bad_readings):
        read(session, new, seq, now - timedelta(minutes=seq), None, quality="bad")
    session.flush()
    got = health(session, [(old.code, "gw-d"), (new.code, "gw-d"), ("e-none", None)], now, rules)
    assert got[old.code].state is Health.OK
    assert got[old.code].last_reading == now - timedelta(minutes=5)
    assert got[new.code].state is Health.ERRORS
    assert got[new.code].bad_readings == rules.bad_readings
    assert got["e-none"].state is Health.UNBOUND
    quiet = health(session, [(old.code, "gw-d")], now + timedelta(hours=1), rules)
    assert quiet[old.code].state is Health.SILENT
