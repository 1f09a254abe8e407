"""The one writer of invoices: typed bills in, invoice and line rows out (billing runs and
deposit settlements alike), in bulk.

A bill whose total is a credit is paid at once and its amount becomes a credit-note payment
that pays the lease's later invoices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cloud.billing.lines import Line
from cloud.billing.service.accounts import CREDIT_NOTE
from cloud.db.bulk import insert_rows
from cloud.models import Base, Invoice, InvoiceStatus, Payment

TABLES = Base.metadata.tables


@dataclass(frozen=True, slots=True)
class Bill:
    number: str
    lease_id: int
    issue: date
    due: date
    lines: Sequence[Line]

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


def write_bills(
    session: Session,
    property_id: int,
    bills: Sequence[Bill],
    *,
    now: datetime,
    run_id: int | None = None,
) -> list[int]:
    """Insert `bills` of `property_id` (of billing run `run_id`, if any) with their lines and
    credit notes; returns the new invoices' ids, in order. The caller commits."""
    if not bills:
        return []
    rows = [
        {
            "number": b.number,
            "property_id": property_id,
            "lease_id": b.lease_id,
            "run_id": run_id,
            "issue_date": b.issue,
            "due_date": b.due,
            "total_fen": b.total,
            "paid_fen": 0,
            "status": InvoiceStatus.OPEN if b.total > 0 else InvoiceStatus.PAID,
            "late_fee_fen": 0,
            "created_at": now,
        }
        for b in bills
    ]
    insert_rows(session, TABLES["invoices"], rows)
    which = (
        Invoice.run_id == run_id
        if run_id is not None
        else Invoice.number.in_([b.number for b in bills])
    )
    by_number = dict(
        session.execute(
            # the property narrows it through an index: run_id has none
            select(Invoice.number, Invoice.id).where(Invoice.property_id == property_id, which)
        ).all()
    )
    ids = [by_number[b.number] for b in bills]
    lines = [
        {
            "invoice_id": invoice_id,
            "lease_id": line.lease_id,
            "kind": line.kind,
            "meter_key": line.meter,
            "period_start": line.start,
            "period_end": line.end,
            "amount_fen": line.amount,
            "description": line.description,
            "detail": line.detail,
            "utility": line.utility,
            "previous_reading": line.previous_reading,
            "current_reading": line.current_reading,
            "quantity": line.quantity,
        }
        for invoice_id, bill in zip(ids, bills, strict=True)
        for line in bill.lines
    ]
    insert_rows(session, TABLES["invoice_lines"], lines)
    credits = [
        {
            "property_id": property_id,
            "lease_id": b.lease_id,
            "amount_fen": -b.total,
            "received_at": now,
            "method": CREDIT_NOTE,
            "reference": b.number,
            "note": "",
        }
        for b in bills
        if b.total < 0
    ]
    if credits:
        session.execute(insert(Payment), credits)
    return ids
