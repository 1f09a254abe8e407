"""Payments on a lease's account: partial payments, over-payment kept as credit, reversals.

A lease's unapplied credit is what its payments (and credit notes) have not yet paid:
sum(payments) - sum(allocations). Credit is applied to open invoices oldest due first whenever a
payment arrives or a billing run issues invoices.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from cloud.billing.errors import BillingError
from cloud.billing.payments import OpenItem, apply_payment
from cloud.models import Invoice, InvoiceStatus, Lease, Payment, PaymentAllocation

CREDIT_NOTE = "credit_note"  # the payment a negative invoice makes, so its credit can be applied


def unapplied(
    session: Session, lease_ids: Collection[int] | Select[Any] | None = None
) -> dict[int, int]:
    """Unapplied credit per lease (only leases that have some); `lease_ids` may be a subquery."""
    paid = select(Payment.lease_id, func.sum(Payment.amount_fen)).group_by(Payment.lease_id)
    used = (
        select(Payment.lease_id, func.sum(PaymentAllocation.amount_fen))
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .group_by(Payment.lease_id)
    )
    if lease_ids is not None:
        paid = paid.where(Payment.lease_id.in_(lease_ids))
        used = used.where(Payment.lease_id.in_(lease_ids))
    applied = {lease: int(total) for lease, total in session.execute(used)}
    credit = {lease: int(total) - applied.get(lease, 0) for lease, total in session.execute(paid)}
    return {lease: c for lease, c in credit.items() if c > 0}


def apply_credit(session: Session, lease_id: int) -> int:
    """Apply the lease's unapplied payments to its open invoices; returns the credit left."""
    credit = unapplied(session, [lease_id]).get(lease_id, 0)
    if credit <= 0:
        return 0
    invoices = session.scalars(
        select(Invoice)
        .where(Invoice.lease_id == lease_id, Invoice.status == InvoiceStatus.OPEN)
        .order_by(Invoice.due_date, Invoice.id)
        .with_for_update()
    ).all()
    items = [OpenItem(str(i.id), i.due_date, i.total_fen - i.paid_fen) for i in invoices]
    items = [i for i in items if i.balance > 0]
    if not items:
        return credit
    plan = apply_payment(credit, items)
    # Spend the oldest payments' remainders first, so a reversal takes back what it paid.
    payments = _payments_with_remainder(session, lease_id)
    by_id = {i.id: i for i in invoices}
    for invoice_key, amount in plan.applied.items():
        invoice = by_id[int(invoice_key)]
        left = amount
        while left > 0:
            payment_id, remainder = payments[0]
            take = min(left, remainder)
            session.add(
                PaymentAllocation(payment_id=payment_id, invoice_id=invoice.id, amount_fen=take)
            )
            left -= take
            payments[0] = (payment_id, remainder - take)
            if payments[0][1] == 0:
                payments.pop(0)
        invoice.paid_fen += amount
        if invoice.paid_fen >= invoice.total_fen:
            invoice.status = InvoiceStatus.PAID
    session.flush()
    return plan.credit


def _payments_with_remainder(session: Session, lease_id: int) -> list[tuple[int, int]]:
    used = (
        select(PaymentAllocation.payment_id, func.sum(PaymentAllocation.amount_fen).label("used"))
        .group_by(PaymentAllocation.payment_id)
        .subquery()
    )
    rows = session.execute(
        select(Payment.id, Payment.amount_fen - func.coalesce(used.c.used, 0))
        .outerjoin(used, used.c.payment_id == Payment.id)
        .where(
            Payment.lease_id == lease_id,
            Payment.amount_fen > 0,
            Payment.id.not_in(select(Payment.reverses_id).where(Payment.reverses_id.is_not(None))),
        )
        .order_by(Payment.received_at, Payment.id)
    )
    return [(pid, int(rest)) for pid, rest in rows if rest > 0]


def record_payment(
    session: Session,
    lease: Lease,
    amount: int,
    *,
    received_at: datetime,
    method: str = "transfer",
    reference: str = "",
    deposit: bool = False,
) -> Payment:
    if amount <= 0:
        raise BillingError("a payment must be positive")
    payment = Payment(
        property_id=lease.property_id,
        lease_id=lease.id,
        amount_fen=amount,
        received_at=received_at,
        method=method,
        reference=reference,
        deposit=deposit,
    )
    session.add(payment)
    session.flush()
    apply_credit(session, lease.id)
    return payment


def reverse_payment(session: Session, payment: Payment, *, at: datetime, note: str) -> Payment:
    """Undo a payment (bounced transfer, mistake): the invoices it paid are open again."""
    if payment.amount_fen <= 0 or payment.reverses_id is not None:
        raise BillingError(f"payment {payment.id} is itself a reversal")
    if session.scalar(select(Payment.id).where(Payment.reverses_id == payment.id)) is not None:
        raise BillingError(f"payment {payment.id} is already reversed")
    if not note.strip():
        raise BillingError("a reversal needs a reason")
    reversal = Payment(
        property_id=payment.property_id,
        lease_id=payment.lease_id,
        amount_fen=-payment.amount_fen,
        received_at=at,
        method="reversal",
        reference=f"reverses {payment.id}",
        reverses_id=payment.id,
        note=note,
        deposit=payment.deposit,
    )
    session.add(reversal)
    session.flush()
    allocations = session.execute(
        select(PaymentAllocation.invoice_id, func.sum(PaymentAllocation.amount_fen))
        .where(PaymentAllocation.payment_id == payment.id)
        .group_by(PaymentAllocation.invoice_id)
    ).all()
    for invoice_id, amount in allocations:
        session.add(
            PaymentAllocation(payment_id=reversal.id, invoice_id=invoice_id, amount_fen=-amount)
        )
        session.execute(
            update(Invoice)
            .where(Invoice.id == invoice_id)
            .values(paid_fen=Invoice.paid_fen - amount, status=InvoiceStatus.OPEN)
        )
    session.flush()
    # Whatever credit other payments still hold may now pay the re-opened invoices.
    apply_credit(session, payment.lease_id)
    return reversal


def balance(session: Session, lease_id: int) -> int:
    """What the lease owes (negative: credit): invoices minus payments."""
    billed = session.scalar(
        select(func.coalesce(func.sum(Invoice.total_fen), 0)).where(
            Invoice.lease_id == lease_id, Invoice.status != InvoiceStatus.VOID
        )
    )
    paid = session.scalar(  # a credit note's payment only mirrors its negative invoice
        select(func.coalesce(func.sum(Payment.amount_fen), 0)).where(
            Payment.lease_id == lease_id, Payment.method != CREDIT_NOTE
        )
    )
    return int(billed or 0) - int(paid or 0)
