"""Billing runs on the real databases: rent, utilities, common area, idempotency, payments."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.billing.errors import BillingError
from cloud.billing.service import accounts
from cloud.billing.service.runs import run_billing
from cloud.models import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Lease,
    LineKind,
    Payment,
    Tariff,
    TariffKind,
    UsageHold,
)
from cloud.progress import Board, Progress
from tests.cloud.billing.world import TZ, World

NOW = datetime(2026, 2, 1, 2, 0, tzinfo=UTC)
TIERS = [
    {"lower": "0", "upper": "100", "price": "0.50"},
    {"lower": "100", "upper": "", "price": "0.80"},
]


def lines(session: Session, lease: Lease, kind: LineKind | None = None) -> list[InvoiceLine]:
    q = select(InvoiceLine).where(InvoiceLine.lease_id == lease.id)
    if kind is not None:
        q = q.where(InvoiceLine.kind == kind)
    return list(session.scalars(q.order_by(InvoiceLine.period_start, InvoiceLine.id)))


@pytest.fixture
def building(session: Session) -> tuple[World, Lease, Lease]:
    w = World(session)
    a, b, c = w.unit("A-101", "50"), w.unit("A-102", "30"), w.unit("A-103", "20")
    ma, mb, mc = w.meter("e-a", a), w.meter("e-b", b), w.meter("e-c", c)
    master = w.meter("e-master", digits=7)
    w.tariff(TIERS, common_price="0.60", common_basis="area")
    lease_a = w.lease(a, date(2026, 1, 1), date(2026, 12, 31), rent=300000)
    lease_b = w.lease(b, date(2026, 1, 15), date(2027, 1, 14), rent=250000, cycle=3)
    for meter, value in ((ma, 1000), (mb, 2000), (mc, 500), (master, 10000)):
        w.read(meter, date(2026, 1, 1), value)
    w.read(mb, date(2026, 1, 15), 2010)
    for meter, value in ((ma, 1150), (mb, 2110), (mc, 500), (master, 10300)):
        w.read(meter, date(2026, 2, 1), value)
    session.flush()
    return w, lease_a, lease_b


def test_january_bills_rent_falling_due_and_deposits(
    session: Session, building: tuple[World, Lease, Lease]
) -> None:
    w, lease_a, lease_b = building
    run = run_billing(session, w.prop.id, "2026-01", now=NOW, tz=TZ)
    assert run.invoices_created == 3  # A: January (due Jan 1) and February (due Jan 25); B
    rent_a = [(x.period_start, x.amount_fen) for x in lines(session, lease_a, LineKind.RENT)]
    # February's rent falls due on Jan 25 (7 days before), so January's run bills it too.
    assert rent_a == [(date(2026, 1, 1), 300000), (date(2026, 2, 1), 300000)]
    rent_b = lines(session, lease_b, LineKind.RENT)
    assert [(x.period_start, x.period_end, x.amount_fen) for x in rent_b] == [
        (date(2026, 1, 15), date(2026, 4, 14), 750000)
    ]
    assert [x.amount_fen for x in lines(session, lease_b, LineKind.DEPOSIT)] == [250000]
    invoice_b = session.scalars(select(Invoice).where(Invoice.lease_id == lease_b.id)).one()
    assert (invoice_b.total_fen, invoice_b.due_date) == (1000000, date(2026, 1, 15))


def test_february_bills_january_utilities_and_common_area(
    session: Session, building: tuple[World, Lease, Lease]
) -> None:
    w, lease_a, lease_b = building
    run_billing(session, w.prop.id, "2026-01", now=NOW, tz=TZ)
    run = run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ)
    (util_a,) = lines(session, lease_a, LineKind.UTILITY)
    # 150 kWh: 100 @0.50 + 50 @0.80 = 90.00
    assert (util_a.quantity, util_a.amount_fen) == (150, 9000)
    assert (util_a.previous_reading, util_a.current_reading) == (1000, 1150)
    (util_b,) = lines(session, lease_b, LineKind.UTILITY)
    assert (util_b.period_start, util_b.quantity, util_b.amount_fen) == (
        date(2026, 1, 15),
        100,
        5000,
    )
    # common = 300 - (150 + 110 + 0) = 40 kWh @0.60 = 24.00, by area x days occupied:
    # A 50, B 30 x 17/31, operator the rest (B's vacant days and all of C): 1200 / 395 / 805.
    (common_a,) = lines(session, lease_a, LineKind.COMMON_AREA)
    (common_b,) = lines(session, lease_b, LineKind.COMMON_AREA)
    assert (common_a.amount_fen, common_b.amount_fen, run.operator_cost_fen) == (1200, 395, 805)
    assert run.utility_cost_fen == 18000  # the master's 300 kWh at 0.60
    assert [x.amount_fen for x in lines(session, lease_a, LineKind.RENT)][-1] == 300000


def test_the_tariffs_owner_share_is_absorbed_by_the_operator(
    session: Session, building: tuple[World, Lease, Lease]
) -> None:
    """The same 24.00 with the tariff's RUBS owner share at 2,500 basis points: the owner
    absorbs 6.00 and the vacancy's part of the rest (test_month_rules has the arithmetic)."""
    w, lease_a, lease_b = building
    session.scalars(select(Tariff)).one().owner_share_bp = 2500
    run_billing(session, w.prop.id, "2026-01", now=NOW, tz=TZ)
    run = run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ)
    (common_a,) = lines(session, lease_a, LineKind.COMMON_AREA)
    (common_b,) = lines(session, lease_b, LineKind.COMMON_AREA)
    assert (common_a.amount_fen, common_b.amount_fen, run.operator_cost_fen) == (900, 296, 1204)
    assert common_a.detail["owner_share_bp"] == 2500


def test_rerunning_creates_nothing_new(
    session: Session, building: tuple[World, Lease, Lease]
) -> None:
    w, _, _ = building
    for period in ("2026-01", "2026-02"):
        run_billing(session, w.prop.id, period, now=NOW, tz=TZ)
    counted = (
        session.scalar(select(func.count()).select_from(InvoiceLine)),
        session.scalar(select(func.count()).select_from(Invoice)),
        session.scalar(select(func.sum(Invoice.total_fen))),
    )
    for period in ("2026-02", "2026-01", "2026-02"):
        run = run_billing(session, w.prop.id, period, now=NOW, tz=TZ)
    assert run.invoices_created == 2  # A and B in February, none added by the re-runs
    assert counted == (
        session.scalar(select(func.count()).select_from(InvoiceLine)),
        session.scalar(select(func.count()).select_from(Invoice)),
        session.scalar(select(func.sum(Invoice.total_fen))),
    )


def test_early_termination_credits_rent_already_billed(
    session: Session, building: tuple[World, Lease, Lease]
) -> None:
    w, _, lease_b = building
    run_billing(session, w.prop.id, "2026-01", now=NOW, tz=TZ)
    lease_b.terminated_on = date(2026, 2, 28)
    session.flush()
    run_billing(session, w.prop.id, "2026-03", now=NOW, tz=TZ)
    (credit,) = lines(session, lease_b, LineKind.ADJUSTMENT)
    # billed Jan 15 - Apr 14 (7,500.00); kept Jan 15 - Feb 28: one rent month, plus 14 of the
    # 28 days of the rent month Feb 15 - Mar 14
    assert credit.amount_fen == (250000 + 125000) - 750000
    assert credit.period_start == date(2026, 3, 1)
    # the credit note pays the open January invoice
    jan = session.scalars(
        select(Invoice).where(Invoice.lease_id == lease_b.id).order_by(Invoice.id)
    ).first()
    assert jan is not None
    assert (jan.paid_fen, jan.status) == (375000, InvoiceStatus.OPEN)
    # terminated again on the same day: nothing new
    run_billing(session, w.prop.id, "2026-04", now=NOW, tz=TZ)
    assert len(lines(session, lease_b, LineKind.ADJUSTMENT)) == 1


def test_payments_partial_over_and_reversed(
    session: Session, building: tuple[World, Lease, Lease]
) -> None:
    w, lease_a, _ = building
    run_billing(session, w.prop.id, "2026-01", now=NOW, tz=TZ)
    jan, feb = session.scalars(
        select(Invoice).where(Invoice.lease_id == lease_a.id).order_by(Invoice.due_date)
    ).all()
    assert (jan.total_fen, jan.due_date) == (600000, date(2026, 1, 1))  # rent + deposit
    assert (feb.total_fen, feb.due_date) == (300000, date(2026, 1, 25))
    first = accounts.record_payment(session, lease_a, 400000, received_at=NOW)
    assert (jan.paid_fen, jan.status, feb.paid_fen) == (400000, InvoiceStatus.OPEN, 0)
    accounts.record_payment(session, lease_a, 600000, received_at=NOW)
    assert (jan.status, feb.status) == (InvoiceStatus.PAID, InvoiceStatus.PAID)
    assert accounts.unapplied(session, [lease_a.id]) == {lease_a.id: 100000}
    assert accounts.balance(session, lease_a.id) == -100000
    # the credit pays March's rent (with January's utilities) as soon as it is issued
    run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ)
    mar = session.scalars(
        select(Invoice).where(Invoice.lease_id == lease_a.id).order_by(Invoice.due_date)
    ).all()[-1]
    assert (mar.due_date, mar.total_fen, mar.paid_fen) == (date(2026, 2, 22), 310200, 100000)
    accounts.reverse_payment(session, first, at=NOW, note="transfer bounced")
    session.refresh(jan)
    assert (jan.paid_fen, jan.status) == (200000, InvoiceStatus.OPEN)
    assert accounts.balance(session, lease_a.id) == 600000 + 300000 + 310200 - 600000
    with pytest.raises(BillingError, match="already reversed"):
        accounts.reverse_payment(session, first, at=NOW, note="again")
    assert session.scalar(select(func.sum(Payment.amount_fen))) == 600000


TOU = [
    {"zone": "peak", "point": "import_peak", "price": "1.00"},
    {"zone": "valley", "point": "import_valley", "price": "0.30"},
]


def test_time_of_use_prices_each_zone_register(session: Session) -> None:
    """peak 100 -> 220 and valley 50 -> 130: 120 x 1.00 + 80 x 0.30 = 144.00; a unit whose
    meter never sent its valley register is held, not guessed."""
    w = World(session, "TOU Org")
    a, b = w.unit("T-1", "40"), w.unit("T-2", "40")
    ma, mb = w.meter("e-t1", a), w.meter("e-t2", b)
    master = w.meter("e-tmaster", digits=7)
    w.tariff(TOU, kind=TariffKind.TIME_OF_USE, common_price="0.50", common_basis="equal")
    lease_a = w.lease(a, date(2026, 1, 1), date(2026, 12, 31), rent=100000)
    lease_b = w.lease(b, date(2026, 1, 1), date(2026, 12, 31), rent=100000)
    for meter in (ma, mb):
        w.read(meter, date(2026, 1, 1), 100, "import_peak")
        w.read(meter, date(2026, 2, 1), 220, "import_peak")
    w.read(ma, date(2026, 1, 1), 50, "import_valley")  # T-2's meter never sent this register
    w.read(ma, date(2026, 2, 1), 130, "import_valley")
    w.read(master, date(2026, 1, 1), 1000)  # the master's total register
    w.read(master, date(2026, 2, 1), 1500)
    session.flush()
    run = run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ)
    (line,) = lines(session, lease_a, LineKind.UTILITY)
    assert (line.amount_fen, line.quantity) == (14400, 200)
    assert line.description == "electricity meter e-t1: peak 120.0 + valley 80.0 = 200.0"
    assert line.detail["parts"] == [["peak", "120.0", "1"], ["valley", "80.0", "3/10"]]
    assert line.detail["zones"] == [
        ["peak", "import_peak", "100.0", "220.0"],
        ["valley", "import_valley", "50.0", "130.0"],
    ]
    assert lines(session, lease_b, LineKind.UTILITY) == []
    assert any(f"lease {lease_b.id} meter e-t2" in f for f in run.flags)
    hold = session.scalars(select(UsageHold).where(UsageHold.lease_id == lease_b.id)).one()
    assert "import_valley" in hold.reason
    # common area needs every submeter's usage: with T-2 unreadable it is flagged, not billed
    assert lines(session, lease_a, LineKind.COMMON_AREA) == []
    assert any("common area e-tmaster not billed" in f for f in run.flags)
    again = run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ)
    assert again.lines_created == run.lines_created


def test_two_leases_moving_in_on_the_same_day_are_both_metered(session: Session) -> None:
    """A mid-month boundary is read one meter at a time: the second meter asked there must be
    looked up too, not taken as missing."""
    w = World(session)
    w.tariff(TIERS)
    moved_in = date(2026, 1, 15)
    leases = []
    for code, value in (("M-1", 100), ("M-2", 200)):
        unit = w.unit(code, "30")
        meter = w.meter(f"e-{code}", unit)
        leases.append(w.lease(unit, moved_in, date(2026, 12, 31), rent=100000))
        w.read(meter, moved_in, value)
        w.read(meter, date(2026, 2, 1), value + 10)
    session.flush()
    run_billing(session, w.prop.id, "2026-01", now=NOW, tz=TZ)
    run = run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ)
    assert not [f for f in run.flags if f.startswith("held")]
    for lease in leases:
        (line,) = lines(session, lease, LineKind.UTILITY)
        assert (line.period_start, line.quantity, line.amount_fen) == (moved_in, Decimal(10), 500)


def test_a_run_reports_each_phase_from_none_to_all(
    session: Session, building: tuple[World, Lease, Lease]
) -> None:
    w, _a, _b = building
    heard: list[tuple[str, int, int]] = []
    run = run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ,
                      progress=lambda *p: heard.append(p))  # fmt: skip
    phases = [p for p, _done, _total in heard]
    assert sorted(set(phases), key=phases.index) == [
        "rent", "utilities", "common area", "writing"
    ]  # fmt: skip
    assert [x for x in heard if x[0] == "rent"] == [("rent", 0, 2), ("rent", 1, 2), ("rent", 2, 2)]
    assert heard[-1] == ("writing", run.invoices_created, run.invoices_created)
    for phase in ("rent", "utilities"):  # never backwards within a phase
        done = [d for p, d, _t in heard if p == phase]
        assert done == sorted(done)
        assert done[-1] == 2


def test_progress_of_a_failed_run_ends_where_it_stopped(
    session: Session, building: tuple[World, Lease, Lease]
) -> None:
    w, _a, _b = building
    board = Board()

    def fail_at_utilities(phase: str, done: int, total: int) -> None:
        board.set("k", Progress(phase, done, total))
        if phase == "utilities":
            raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError), board.track("k"):
        run_billing(session, w.prop.id, "2026-02", now=NOW, tz=TZ, progress=fail_at_utilities)
    assert board.get("k") == Progress("failed", 0, 2, finished=True)
    with board.track("k") as report:
        report("writing", 3, 3)
    assert board.get("k") == Progress("done", 3, 3, finished=True)
