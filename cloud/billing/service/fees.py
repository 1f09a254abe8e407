"""Daily work on overdue invoices: late fees (most specific policy) and reminders (逾期提醒)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from cloud.billing.late_fees import LateFeePolicy, late_fee
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


class Source(StrEnum):
    """Where a lease's late-fee rule comes from (the most specific one set)."""

    LEASE = "lease"
    PROPERTY = "property"
    ORG = "org"


@dataclass(frozen=True, slots=True)
class Policies:
    """The late-fee policies of one property: by id (lease rules), its default, the org's.

    A property's default is its newest policy that no lease points at (a lease's own rule is
    stored with the lease's property but is not the property's default); the organisation's
    default is its newest policy without a property.
    """

    by_id: dict[int, LateFeePolicyRow]
    property_default: LateFeePolicyRow | None
    org_default: LateFeePolicyRow | None

    @classmethod
    def load(cls, session: Session, property_id: int) -> Policies:
        org_id = session.get_one(Property, property_id).org_id
        rows = session.scalars(
            select(LateFeePolicyRow)
            .where(
                LateFeePolicyRow.org_id == org_id,
                or_(
                    LateFeePolicyRow.property_id == property_id,
                    LateFeePolicyRow.property_id.is_(None),
                ),
            )
            .order_by(LateFeePolicyRow.id)
        ).all()
        lease_rules = set(
            session.scalars(
                select(Lease.late_fee_policy_id).where(
                    Lease.late_fee_policy_id.in_([r.id for r in rows])
                )
            )
        )
        prop = [r for r in rows if r.property_id is not None and r.id not in lease_rules]
        org = [r for r in rows if r.property_id is None]
        return cls({r.id: r for r in rows}, prop[-1] if prop else None, org[-1] if org else None)

    def for_lease(self, lease: Lease) -> tuple[LateFeePolicyRow, Source] | None:
        """Most specific wins: the lease's own rule, else the property's, else the org's."""
        found = [
            (self.by_id.get(lease.late_fee_policy_id or 0), Source.LEASE),
            (self.property_default, Source.PROPERTY),
            (self.org_default, Source.ORG),
        ]
        return next(((row, src) for row, src in found if row is not None), None)


def charge_late_fees(session: Session, property_id: int, *, today: date, now: datetime) -> int:
    """Add the late fees due today as one small invoice per overdue invoice; returns the count.

    The original invoice is never changed except its late-fee bookkeeping, and running twice on
    the same day charges nothing more.
    """
    policies = Policies.load(session, property_id)
    rules: dict[int, LateFeePolicy] = {}
    created = 0
    for invoice, lease in overdue(session, property_id, today):
        if invoice.number.startswith(LATE_FEE_PREFIX):
            continue  # no fees on fees
        found = policies.for_lease(lease)
        if found is None:
            continue
        row = found[0]
        rule = rules.get(row.id) or rules.setdefault(row.id, policy(row))
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
