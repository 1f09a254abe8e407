"""Usage holds: a spike (or a reading that cannot be usage) waits for an operator.

Releasing a hold lets the next billing run of that month bill it, at the measured usage or at
the quantity the operator corrected it to. A hold whose usage is already on an invoice cannot be
released again: invoiced periods are never changed (an adjustment line would be the way).

Back rent (periods older than a run bills at once) is released whole, without a quantity: the
next run bills every held period. An error hold (an item the run could not bill) is retried by
every run anyway; releasing it only records that someone looked.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.billing.errors import BillingError
from cloud.models import HoldKind, InvoiceLine, LineKind, UsageHold


def billed(session: Session, hold: UsageHold) -> bool:
    kind = LineKind.RENT if hold.meter_id == "" else LineKind.UTILITY  # rent holds: no meter
    return (
        session.scalar(
            select(InvoiceLine.id).where(
                InvoiceLine.lease_id == hold.lease_id,
                InvoiceLine.kind == kind,
                InvoiceLine.meter_key == hold.meter_id,
                InvoiceLine.period_start == hold.period_start,
            )
        )
        is not None
    )


def release(session: Session, hold: UsageHold, quantity: Decimal | None) -> UsageHold:
    """Release `hold`, optionally with a corrected quantity (the caller commits)."""
    if billed(session, hold):
        raise BillingError(f"hold {hold.id} is already billed; bill a correction as an adjustment")
    if hold.kind != HoldKind.USAGE:
        if quantity is not None:
            raise BillingError(f"hold {hold.id} is {hold.kind}: it bills as it is, no quantity")
        hold.released = True
        session.flush()
        return hold
    if quantity is not None:
        hold.quantity = quantity
    if hold.quantity is None:
        raise BillingError(f"hold {hold.id} has no usable reading: give the quantity to bill")
    hold.released = True
    session.flush()
    return hold
