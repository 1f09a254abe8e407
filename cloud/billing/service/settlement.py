"""Deposit settlement at move-out, booked so that the account reconciles.

The returned deposit is a credit line; each deduction the operator itemises (damages, final
utilities, cleaning) is a charge line with its reason. Both go on one settlement invoice, written
as a billing run writes its bills (service/invoices.py). If the total is a credit it pays the
lease's open invoices (unpaid rent and fees) and what is left is refunded; if not, the invoice
is the final bill. The figures equal `deposits.settle_deposit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.billing.deposits import Deduction, DeductionKind, Settlement, settle_deposit
from cloud.billing.errors import BillingError
from cloud.billing.lines import Line
from cloud.billing.service.accounts import apply_credit, balance, record_payment
from cloud.billing.service.invoices import Bill, write_bills
from cloud.models import DepositSettlementRow, InvoiceLine, Lease, LineKind, Payment


def deposit_held(session: Session, lease_id: int) -> int:
    """The deposit billed to the lease (what it paid of it is in its payments)."""
    amounts = session.scalars(
        select(InvoiceLine.amount_fen).where(
            InvoiceLine.lease_id == lease_id, InvoiceLine.kind == LineKind.DEPOSIT
        )
    ).all()
    return sum(amounts)


def deposit_received(session: Session, lease_id: int) -> int:
    """What the lease's tenant has paid of its deposit (less reversals of those payments)."""
    total = session.scalar(
        select(func.coalesce(func.sum(Payment.amount_fen), 0)).where(
            Payment.lease_id == lease_id, Payment.deposit.is_(True)
        )
    )
    return int(total or 0)


def receive_deposit(
    session: Session,
    lease: Lease,
    amount: int,
    *,
    received_at: datetime,
    method: str,
    reference: str,
) -> Payment:
    """The deposit received, as a payment on the account (it pays the bill that carries the
    deposit, or waits as credit for it). No more than the lease's deposit is taken as deposit,
    and none once it is settled."""
    if is_settled(session, lease.id):
        raise BillingError(f"the deposit of lease {lease.id} is already settled")
    left = lease.deposit_fen - deposit_received(session, lease.id)
    if amount > left:
        raise BillingError(f"lease {lease.id} has {left} fen of its deposit left to receive")
    return record_payment(
        session, lease, amount, received_at=received_at, method=method, reference=reference,
        deposit=True,
    )  # fmt: skip


def is_settled(session: Session, lease_id: int) -> bool:
    found = session.scalar(
        select(DepositSettlementRow.id).where(DepositSettlementRow.lease_id == lease_id)
    )
    return found is not None


def settle(
    session: Session,
    lease: Lease,
    deductions: Sequence[Deduction],
    *,
    on: date,
    now: datetime,
) -> tuple[Settlement, DepositSettlementRow]:
    if is_settled(session, lease.id):
        raise BillingError(f"the deposit of lease {lease.id} is already settled")
    deposit = deposit_held(session, lease.id)
    # Whatever the lease owes (an unpaid deposit included: returning it pays it) is deducted;
    # a credit it holds is paid out with the deposit.
    owed = balance(session, lease.id)
    unpaid = Deduction(DeductionKind.UNPAID_RENT, max(owed, 0), "open invoices")
    figures = settle_deposit(deposit + max(-owed, 0), [unpaid, *deductions])
    number = f"DS-L{lease.id}"
    lines = [
        Line(
            lease_id=lease.id,
            kind=LineKind.DEPOSIT_SETTLEMENT,
            start=on,
            end=on,
            amount=-deposit,
            description="Deposit returned to the account",
        ),
        *(
            Line(
                lease_id=lease.id,
                kind=LineKind.ADJUSTMENT,
                meter=f"settlement-{n}",
                start=on,
                end=on,
                amount=d.amount,
                description=f"{d.kind}: {d.reason}",
                detail={"deduction": str(d.kind)},
            )
            for n, d in enumerate(deductions)
        ),
    ]
    (invoice_id,) = write_bills(
        session, lease.property_id, [Bill(number, lease.id, on, on, lines)], now=now
    )
    session.flush()
    left = apply_credit(session, lease.id)
    assert left == figures.refund, (left, figures)
    if left > 0:  # pay it out: the refund leaves the account
        session.add(
            Payment(
                property_id=lease.property_id,
                lease_id=lease.id,
                amount_fen=-left,
                received_at=now,
                method="refund",
                reference=number,
                note="deposit refund",
            )
        )
    row = DepositSettlementRow(
        lease_id=lease.id,
        deposit_fen=deposit,
        refund_fen=figures.refund,
        final_bill_fen=figures.final_bill,
        deductions=[
            {"kind": str(d.kind), "amount_fen": d.amount, "reason": d.reason}
            for d in figures.deductions
        ],
        final_invoice_id=invoice_id,
        settled_at=now,
    )
    session.add(row)
    session.flush()
    return figures, row
