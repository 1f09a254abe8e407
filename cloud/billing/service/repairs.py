"""Repairs charged to tenants: a work order's parts and labour as a line on the lease's next
bill. The line's natural key names the order, so it is billed once, however often runs go."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cloud.billing.lines import Line
from cloud.db import as_utc
from cloud.models import InvoiceLine, LineKind, WorkOrder

KEY_PREFIX = "work_order:"


def repair_key(order_id: int) -> str:
    return f"{KEY_PREFIX}{order_id}"


def repair_lines(
    session: Session, lease_q: Select[Any], *, fallback: date, tz: ZoneInfo
) -> list[Line]:
    """The charged orders of these leases not billed yet, one adjustment line each, dated the
    day the work was done (`fallback` when that is unknown)."""
    billed = select(InvoiceLine.meter_key).where(
        InvoiceLine.lease_id.in_(lease_q),
        InvoiceLine.kind == LineKind.ADJUSTMENT,
        InvoiceLine.meter_key.like(f"{KEY_PREFIX}%"),
    )
    done = set(session.scalars(billed))
    orders = session.scalars(
        select(WorkOrder)
        .where(WorkOrder.charge_lease_id.in_(lease_q), WorkOrder.charge_fen > 0)
        .order_by(WorkOrder.id)
    )
    lines = []
    for order in orders:
        if repair_key(order.id) in done or order.charge_lease_id is None:
            continue
        day = as_utc(order.resolved_at).astimezone(tz).date() if order.resolved_at else fallback
        parts = order.charge_fen - order.labour_fen
        lines.append(
            Line(
                lease_id=order.charge_lease_id, kind=LineKind.ADJUSTMENT, start=day, end=day,
                amount=order.charge_fen, meter=repair_key(order.id),
                description=f"Repair #{order.id}: parts {parts / 100:.2f}, labour "
                f"{order.labour_fen / 100:.2f}",
                detail={"work_order_id": order.id, "parts_fen": parts,
                        "labour_fen": order.labour_fen},
            )
        )  # fmt: skip
    return lines
