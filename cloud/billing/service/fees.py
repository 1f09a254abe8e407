"""Daily work on overdue invoices: late fees (most specific policy) and reminders (逾期提醒)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cloud.billing.late_fees import LateFeePolicy, late_fee, most_specific
from cloud.billing.money import yuan
from cloud.billing.service import notify
from cloud.billing.service.terms import policy
from cloud.models import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LateFeePolicyRow,
    Lease,
    LineKind,
    Property,
)

LATE_FEE_PREFIX = "LF-"


def overdue(session: Session, property_id: int, today: date) -> list[tuple[Invoice, Lease]]:
    rows = session.execute(
        select(Invoice, Lease)
        .join(Lease, Lease.id == Invoice.lease_id)
        .where(
            Invoice.property_id == property_id,
            Invoice.status == InvoiceStatus.OPEN,
            Invoice.due_date < today,
            Invoice.total_fen > Invoice.paid_fen,
        )
        .order_by(Invoice.due_date, Invoice.id)
    ).all()
    return [(invoice, lease) for invoice, lease in rows]


def _policies(session: Session, property_id: int) -> tuple[dict[int, LateFeePolicy], Any, Any]:
    prop = session.get(Property, property_id)
    assert prop is not None
    rows = session.scalars(
        select(LateFeePolicyRow)
        .where(LateFeePolicyRow.org_id == prop.org_id)
        .order_by(LateFeePolicyRow.id)
    ).all()
    by_id = {r.id: policy(r) for r in rows}
    # A row of this property without a lease pointing at it is the property's default; the
    # newest wins. The organisation's default has no property.
    prop_rows = [r for r in rows if r.property_id == property_id]
    org_rows = [r for r in rows if r.property_id is None]
    prop_default = by_id[prop_rows[-1].id] if prop_rows else None
    org_default = by_id[org_rows[-1].id] if org_rows else None
    return by_id, prop_default, org_default


def charge_late_fees(session: Session, property_id: int, *, today: date, now: datetime) -> int:
    """Add the late fees due today as one small invoice per overdue invoice; returns the count.

    The original invoice is never changed except its late-fee bookkeeping, and running twice on
    the same day charges nothing more.
    """
    by_id, prop_default, org_default = _policies(session, property_id)
    created = 0
    for invoice, lease in overdue(session, property_id, today):
        if invoice.number.startswith(LATE_FEE_PREFIX):
            continue  # no fees on fees
        lease_policy = by_id.get(lease.late_fee_policy_id or 0)
        rule = most_specific(lease_policy, prop_default, org_default)
        if rule is None:
            continue
        fee = late_fee(
            rule,
            due=invoice.due_date,
            balance=invoice.total_fen - invoice.paid_fen,
            as_of=today,
            charged_through=invoice.late_fee_through,
            already_charged=invoice.late_fee_fen,
        )
        invoice.late_fee_through = fee.through
        if fee.amount <= 0:
            continue
        invoice.late_fee_fen += fee.amount
        number = f"{LATE_FEE_PREFIX}{invoice.number}-{today:%Y%m%d}"
        fee_id = session.execute(
            insert(Invoice).returning(Invoice.id),
            {
                "number": number,
                "property_id": property_id,
                "lease_id": lease.id,
                "run_id": None,
                "issue_date": today,
                "due_date": today,
                "total_fen": fee.amount,
                "paid_fen": 0,
                "status": InvoiceStatus.OPEN,
                "late_fee_fen": 0,
                "created_at": now,
            },
        ).scalar_one()
        session.add(
            InvoiceLine(
                invoice_id=fee_id,
                lease_id=lease.id,
                kind=LineKind.LATE_FEE,
                meter_key=str(invoice.id),
                period_start=today,
                period_end=today,
                amount_fen=fee.amount,
                description=(
                    f"Late fee on {invoice.number} (due {invoice.due_date}): {fee.days} "
                    f"charge(s) of {rule.kind} {rule.mode}"
                ),
                detail={"invoice": invoice.number, "days": fee.days},
            )
        )
        created += 1
    session.flush()
    return created


def queue_reminders(
    session: Session, property_id: int, *, today: date, now: datetime, email: bool
) -> int:
    """One reminder per overdue invoice per day, to the lease's primary tenant."""
    count = 0
    for invoice, lease in overdue(session, property_id, today):
        owed = invoice.total_fen - invoice.paid_fen
        days = (today - invoice.due_date).days
        notify.queue(
            session,
            dedupe_key=f"overdue:{invoice.id}:{today}",
            kind="overdue",
            subject=f"账单逾期提醒 / Overdue bill {invoice.number}",
            body=(
                f"账单 {invoice.number} 已逾期 {days} 天，未付金额 ¥{yuan(owed)}。\n"
                f"Bill {invoice.number} is {days} day(s) overdue; ¥{yuan(owed)} is unpaid."
            ),
            now=now,
            tenant_id=lease.primary_tenant_id,
            lease_id=lease.id,
            email=email,
        )
        count += 1
    return count
