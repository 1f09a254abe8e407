"""A billing run with bad stored values and leases dated years back: it bills every other
lease, holds and lists the bad item with its reason, and bills a bounded number of back months.
The bad values are written straight to the database, as an old version or a hand-made UPDATE
would have left them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.billing.service import holds
from cloud.billing.service.runs import run_billing
from cloud.config import load_settings
from cloud.models import (
    HoldKind,
    InvoiceLine,
    Lease,
    LineKind,
    Reading,
    Tariff,
    TariffKind,
    UsageHold,
)
from tests.cloud.billing.world import TZ, World

NOW = datetime(2026, 2, 1, 2, 0, tzinfo=UTC)
FLAT = [{"lower": "0", "upper": "", "price": "0.50"}]


def lines(session: Session, lease: Lease, kind: LineKind) -> list[InvoiceLine]:
    q = select(InvoiceLine).where(InvoiceLine.lease_id == lease.id, InvoiceLine.kind == kind)
    return list(session.scalars(q.order_by(InvoiceLine.period_start)))


def lease_holds(session: Session, lease: Lease) -> list[UsageHold]:
    return list(session.scalars(select(UsageHold).where(UsageHold.lease_id == lease.id)))


@pytest.fixture
def two(session: Session) -> tuple[World, Lease, Lease]:
    """Two leases, each with a meter that used 100 kWh in January."""
    w = World(session)
    a, b = w.unit("A-101", "50"), w.unit("A-102", "30")
    for unit, meter in ((a, "e-a"), (b, "e-b")):
        w.meter(meter, unit, digits=None)
        w.read(meter, date(2026, 1, 1), 1000)
        w.read(meter, date(2026, 2, 1), 1100)
    good = w.lease(a, date(2026, 1, 1), date(2026, 12, 31), rent=300000)
    bad = w.lease(b, date(2026, 1, 1), date(2026, 12, 31), rent=250000)
    session.flush()
    return w, good, bad


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"rent_fen": 2**31 - 1}, "rent_fen 2147483647 is outside 0..2,000,000,000"),
        ({"due_days_before": 2**31 - 1}, "OverflowError"),  # an exception no check foresaw
        ({"deposit_fen": 2**31 - 1}, "deposit_fen 2147483647 is outside"),
    ],
)
def test_a_lease_with_a_bad_stored_value_is_held_and_the_rest_billed(
    session: Session, two: tuple[World, Lease, Lease], change: dict[str, int], why: str
) -> None:
    w, good, bad = two
    w.tariff(FLAT)
    session.execute(update(Lease).where(Lease.id == bad.id).values(**change))
    session.expire_all()
    run = run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ)
    assert [x.amount_fen for x in lines(session, good, LineKind.RENT)] == [300000] * 3
    assert lines(session, good, LineKind.UTILITY)[0].amount_fen == 5000
    assert lines(session, bad, LineKind.RENT) == []
    assert lines(session, bad, LineKind.DEPOSIT) == []
    assert lines(session, bad, LineKind.UTILITY)[0].amount_fen == 5000  # the meter is fine
    [skipped] = run.skipped
    assert (skipped["lease_id"], skipped["item"]) == (bad.id, "rent")
    assert why in skipped["reason"]
    [hold] = lease_holds(session, bad)
    assert (hold.kind, hold.meter_id, hold.released) == (HoldKind.ERROR, "", False)
    assert why in hold.reason
    assert any(why in f for f in run.flags)


@pytest.mark.parametrize("bad_price", ["1e400", "NaN", "-1", "abc", "10000.01"])
def test_a_tariff_with_a_bad_stored_price_skips_its_utility_only(
    session: Session, two: tuple[World, Lease, Lease], bad_price: str
) -> None:
    w, good, bad = two
    tariff = w.tariff(FLAT)
    stored = [{"lower": "0", "upper": "", "price": bad_price}]
    session.execute(update(Tariff).where(Tariff.id == tariff.id).values(tiers=stored))
    session.expire_all()
    run = run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ)
    for lease in (good, bad):
        assert len(lines(session, lease, LineKind.RENT)) == 3
        assert lines(session, lease, LineKind.UTILITY) == []
    [skipped] = run.skipped
    assert skipped["lease_id"] is None
    assert skipped["item"] == f"electricity tariff {tariff.id}"
    assert repr(bad_price) in skipped["reason"]
    # The tariff is mended: the next run of that month bills the utility.
    session.execute(update(Tariff).where(Tariff.id == tariff.id).values(tiers=FLAT))
    session.expire_all()
    again = run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ)
    assert again.skipped == []
    assert [x.amount_fen for x in lines(session, good, LineKind.UTILITY)] == [5000]


def test_a_usage_beyond_the_bounds_is_held_not_billed(
    session: Session, two: tuple[World, Lease, Lease]
) -> None:
    """A meter that reports 10^15 kWh: its line would overflow the columns (PostgreSQL's
    numeric(18,4)) and bill 5 x 10^16 fen; the lease is held and its neighbour billed."""
    w, good, bad = two
    w.tariff(FLAT)
    session.execute(
        update(Reading).where(Reading.meter_id == "e-b", Reading.value == 1100).values(value=1e15)
    )
    run = run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ)
    assert [x.amount_fen for x in lines(session, good, LineKind.UTILITY)] == [5000]
    assert lines(session, bad, LineKind.UTILITY) == []
    assert len(lines(session, bad, LineKind.RENT)) == 3
    [skipped] = run.skipped
    assert (skipped["lease_id"], skipped["item"]) == (bad.id, "electricity meter e-b")
    assert "usage" in skipped["reason"]
    [hold] = lease_holds(session, bad)
    assert (hold.kind, hold.meter_id, hold.period_start) == (
        HoldKind.ERROR,
        "e-b",
        date(2026, 1, 1),
    )


@pytest.fixture
def ancient(session: Session) -> tuple[World, Lease]:
    """A lease dated 2000-01-01 to 9999-12-31, written straight to the database."""
    w = World(session)
    lease = w.lease(w.unit("A-101", "50"), date(2000, 1, 1), date(9999, 12, 31), rent=200000)
    return w, lease


def test_a_lease_dated_years_back_bills_three_back_months(
    session: Session, ancient: tuple[World, Lease]
) -> None:
    w, lease = ancient
    run = run_billing(session, w.prop.id, "2027-01", now=NOW, tz=TZ)
    rent = lines(session, lease, LineKind.RENT)
    back = [x.period_start for x in rent if x.period_start < date(2027, 1, 1)]
    assert back == [date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)]
    assert [x.period_start for x in rent][3:] == [date(2027, 1, 1), date(2027, 2, 1)]
    assert [x.amount_fen for x in lines(session, lease, LineKind.DEPOSIT)] == [200000]
    [hold] = lease_holds(session, lease)
    assert (hold.kind, hold.meter_id, hold.released) == (HoldKind.BACK_RENT, "", False)
    assert (hold.period_start, hold.period_end) == (date(2000, 1, 1), date(2026, 9, 30))
    assert hold.quantity == 321  # rent months 2000-01 .. 2026-09
    [skipped] = run.skipped
    assert (skipped["lease_id"], skipped["item"]) == (lease.id, "back rent")
    assert "321 rent period(s) 2000-01-01 to 2026-09-30 (642,000.00)" in skipped["reason"]
    # Running the month again adds nothing and does not hold again.
    assert run_billing(session, w.prop.id, "2027-01", now=NOW, tz=TZ).skipped == []
    assert len(lines(session, lease, LineKind.RENT)) == 5
    # An operator releases the hold: the next run bills every held month, once.
    holds.release(session, hold, None)
    run_billing(session, w.prop.id, "2027-01", now=NOW, tz=TZ)
    rent = lines(session, lease, LineKind.RENT)
    assert len(rent) == 321 + 5
    assert len({x.period_start for x in rent}) == len(rent)
    assert rent[0].period_start == date(2000, 1, 1)
    assert holds.billed(session, hold)
    run_billing(session, w.prop.id, "2027-01", now=NOW, tz=TZ)
    assert len(lines(session, lease, LineKind.RENT)) == 321 + 5
    assert len(lines(session, lease, LineKind.DEPOSIT)) == 1


@pytest.mark.parametrize("back", [0, 1, 12])
def test_the_setting_changes_the_bound(
    session: Session, ancient: tuple[World, Lease], back: int
) -> None:
    w, lease = ancient
    run_billing(session, w.prop.id, "2027-01", now=NOW, tz=TZ, max_back_months=back)
    rent = lines(session, lease, LineKind.RENT)
    assert len([x for x in rent if x.period_start < date(2027, 1, 1)]) == back
    [hold] = lease_holds(session, lease)
    assert hold.quantity == 324 - back


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANJU_BILLING_MAX_BACK_MONTHS", "6")
    assert load_settings(env="development").billing_max_back_months == 6
    assert load_settings(env="development", billing_max_back_months=0).billing_max_back_months == 0
    monkeypatch.setenv("ANJU_BILLING_MAX_BACK_MONTHS", "-1")
    with pytest.raises(Exception, match="ANJU_BILLING_MAX_BACK_MONTHS"):
        load_settings(env="development")


def test_a_lease_all_in_the_past_holds_its_rent_and_bills_its_deposit_once(
    session: Session,
) -> None:
    """With no back months allowed, a lease that ended last month has nothing left to bill
    at once but its deposit; its rent waits, and a re-run neither holds nor bills it twice."""
    w = World(session)
    lease = w.lease(w.unit("A-101", "50"), date(2025, 1, 1), date(2026, 1, 31), rent=100000)

    def run() -> list[str]:
        got = run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ, max_back_months=0)
        return [s["item"] for s in got.skipped]

    assert run() == ["back rent"]
    assert lines(session, lease, LineKind.RENT) == []
    assert [x.amount_fen for x in lines(session, lease, LineKind.DEPOSIT)] == [100000]
    assert run() == []
    [hold] = lease_holds(session, lease)
    assert (hold.quantity, hold.period_end) == (13, date(2026, 1, 31))
    holds.release(session, hold, None)
    assert run() == []
    assert [x.amount_fen for x in lines(session, lease, LineKind.RENT)] == [100000] * 13
    assert len(lines(session, lease, LineKind.DEPOSIT)) == 1


def test_a_time_of_use_tariff_with_a_bad_zone_is_skipped(
    session: Session, two: tuple[World, Lease, Lease]
) -> None:
    w, good, _ = two
    w.tariff([{"zone": "peak", "point": "import_peak", "price": "1e400"}],
             kind=TariffKind.TIME_OF_USE)  # fmt: skip
    run = run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ)
    assert len(lines(session, good, LineKind.RENT)) == 3
    assert [s["lease_id"] for s in run.skipped] == [None]
    assert "'1e400' is above 10000 yuan per unit" in run.skipped[0]["reason"]
    assert lines(session, good, LineKind.UTILITY) == []
