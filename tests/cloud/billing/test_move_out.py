"""Deposit settlement and prepaid accounts on the real databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.billing.deposits import Deduction, DeductionKind
from cloud.billing.errors import BillingError
from cloud.billing.service import accounts, settlement
from cloud.billing.service.prepaid_accounts import charge_readings, top_up
from cloud.billing.service.runs import run_billing
from cloud.models import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Lease,
    LineKind,
    Notification,
    Payment,
    PrepaidAccount,
    PrepaidEntry,
    TariffKind,
)
from tests.cloud.billing.world import TZ, World

NOW = datetime(2026, 2, 10, 2, 0, tzinfo=UTC)
DAMAGE = Deduction(DeductionKind.DAMAGE, 50000, "broken window, bedroom")
UTILITIES = Deduction(DeductionKind.UTILITIES, 23540, "electricity Feb 1-10")


def rented(session: Session) -> tuple[World, Lease, list[Invoice]]:
    w = World(session, "Move Org")
    lease = w.lease(w.unit("C-301", "35"), date(2026, 1, 1), date(2026, 12, 31), rent=300000)
    run_billing(session, w.prop.id, "2026-01", now=NOW, tz=TZ)
    invoices = list(
        session.scalars(
            select(Invoice).where(Invoice.lease_id == lease.id).order_by(Invoice.due_date)
        )
    )
    return w, lease, invoices


def test_deductions_beyond_the_deposit_leave_a_final_bill(session: Session) -> None:
    _, lease, (jan, feb) = rented(session)
    accounts.record_payment(session, lease, jan.total_fen, received_at=NOW)  # rent + deposit
    figures, row = settlement.settle(
        session, lease, [DAMAGE, UTILITIES], on=date(2026, 2, 10), now=NOW
    )
    # 3,000.00 deposit - 3,000.00 unpaid February rent - 500.00 - 235.40 = -735.40
    assert (figures.refund, figures.final_bill) == (0, 73540)
    assert (row.refund_fen, row.final_bill_fen) == (0, 73540)
    assert accounts.balance(session, lease.id) == 73540
    assert feb.status is InvoiceStatus.OPEN
    reasons = session.scalars(
        select(InvoiceLine.description).where(InvoiceLine.kind == LineKind.ADJUSTMENT)
    ).all()
    assert "damage: broken window, bedroom" in reasons
    with pytest.raises(BillingError, match="already settled"):
        settlement.settle(session, lease, [], on=date(2026, 2, 10), now=NOW)


def test_a_paid_up_lease_gets_the_rest_refunded(session: Session) -> None:
    _, lease, (jan, feb) = rented(session)
    accounts.record_payment(session, lease, jan.total_fen + feb.total_fen, received_at=NOW)
    figures, row = settlement.settle(session, lease, [DAMAGE], on=date(2026, 2, 28), now=NOW)
    assert (figures.refund, row.refund_fen, row.final_bill_fen) == (250000, 250000, 0)
    refund = session.scalars(select(Payment).where(Payment.method == "refund")).one()
    assert refund.amount_fen == -250000
    assert accounts.balance(session, lease.id) == 0


def test_a_deposit_received_before_the_first_bill_pays_it(session: Session) -> None:
    w = World(session, "Deposit Org")
    lease = w.lease(w.unit("C-302", "35"), date(2026, 1, 1), date(2026, 12, 31), rent=300000)
    early = NOW - timedelta(days=40)
    paid = settlement.receive_deposit(
        session, lease, 300000, received_at=early, method="cash", reference="R-1"
    )
    assert (paid.deposit, settlement.deposit_received(session, lease.id)) == (True, 300000)
    assert accounts.unapplied(session, [lease.id]) == {lease.id: 300000}  # no bill yet
    run_billing(session, w.prop.id, "2026-01", now=NOW, tz=TZ)
    first = session.scalars(
        select(Invoice).where(Invoice.lease_id == lease.id).order_by(Invoice.due_date)
    ).first()
    assert first is not None
    assert first.paid_fen == 300000  # the waiting deposit pays the bill that carries it
    assert settlement.deposit_held(session, lease.id) == 300000


def test_a_deposit_is_received_no_more_than_once(session: Session) -> None:
    _, lease, _invoices = rented(session)
    first = settlement.receive_deposit(
        session, lease, 200000, received_at=NOW, method="transfer", reference=""
    )
    with pytest.raises(BillingError, match="100000 fen of its deposit left"):
        settlement.receive_deposit(
            session, lease, 100001, received_at=NOW, method="cash", reference=""
        )
    accounts.reverse_payment(session, first, at=NOW, note="transfer bounced")
    assert settlement.deposit_received(session, lease.id) == 0
    settlement.receive_deposit(session, lease, 300000, received_at=NOW, method="cash", reference="")
    settlement.settle(session, lease, [], on=date(2026, 2, 10), now=NOW)
    with pytest.raises(BillingError, match="already settled"):
        settlement.receive_deposit(session, lease, 1, received_at=NOW, method="cash", reference="")


def test_prepaid_deducts_each_reading_once_and_alerts_once(session: Session) -> None:
    w = World(session, "Prepaid Org")
    unit = w.unit("D-401", "30")
    meter = w.meter("e-d401", unit)
    w.tariff([{"lower": "0", "upper": "", "price": "1.00"}], kind=TariffKind.FLAT)
    lease = w.lease(unit, date(2026, 1, 1), date(2026, 12, 31), rent=100000)
    account = PrepaidAccount(
        lease_id=lease.id,
        balance_fen=0,
        low_threshold_fen=5000,
        cutoff_allowed=True,
        last_readings={},
    )
    session.add(account)
    session.flush()
    top_up(session, account, 10000, reference="wx-1", now=NOW)
    for day, value in ((1, 100), (2, 120), (3, 160), (4, 230)):
        w.read(meter, date(2026, 2, day), value)
    session.flush()
    got = charge_readings(session, w.prop.id, now=NOW, tz=TZ)
    assert got.entries == 3
    assert account.balance_fen == 10000 - 2000 - 4000 - 7000
    assert got.cutoff_leases == [lease.id]
    alerts = session.scalars(select(Notification).where(Notification.kind == "low_balance")).all()
    assert len(alerts) == 1
    assert charge_readings(session, w.prop.id, now=NOW + timedelta(hours=1), tz=TZ).entries == 0
    history = session.scalars(
        select(PrepaidEntry.balance_after_fen).order_by(PrepaidEntry.id)
    ).all()
    assert history == [10000, 8000, 4000, -3000]
    # the monthly run does not bill a prepaid lease's meter a second time
    run_billing(session, w.prop.id, "2026-03", now=NOW, tz=TZ)
    assert not session.scalars(
        select(InvoiceLine).where(InvoiceLine.kind == LineKind.UTILITY)
    ).all()
