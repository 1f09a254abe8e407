"""Reports: rent roll, AR aging, collection rate, revenue by property and month, utility cost vs
recovered; each a list of flat dicts (money in fen) that `to_csv` turns into a file.

Aggregation happens in SQL (GROUP BY, CASE); only the handful of result rows come back.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from sqlalchemy import BigInteger, Select, and_, case, cast, func, select, tuple_
from sqlalchemy.orm import Session

from cloud.models import (
    BillingRun,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Lease,
    LeaseStatus,
    LineKind,
    Property,
    Tenant,
    Unit,
)

AGING_BUCKETS = ("current", "d0_30", "d31_60", "d61_90", "d90_plus")
REVENUE_KINDS = (
    LineKind.RENT,
    LineKind.UTILITY,
    LineKind.COMMON_AREA,
    LineKind.LATE_FEE,
    LineKind.ADJUSTMENT,
)
Row = dict[str, Any]


RENT_ROLL_KEYS = (
    "unit",
    "lease_id",
    "tenant",
    "start",
    "end",
    "monthly_rent_fen",
    "deposit_fen",
    "cycle_months",
    "balance_fen",
)


def _in_force(property_id: int, as_of: date) -> tuple[Any, ...]:
    """The rent roll's leases: signed or active, and running on `as_of`."""
    return (
        Lease.property_id == property_id,
        Lease.status.in_([LeaseStatus.ACTIVE, LeaseStatus.SIGNED]),
        Lease.start_date <= as_of,
        Lease.end_date >= as_of,
    )


def _rent_roll_query(property_id: int, as_of: date) -> Select[Any]:
    """The rent roll by (unit code, lease id); each lease's open balance is summed from its own
    invoices (an index lookup per lease), so a page costs its rows, not the property's."""
    owed = (
        select(_fen_sum(Invoice.total_fen - Invoice.paid_fen))
        .where(Invoice.lease_id == Lease.id, Invoice.status == InvoiceStatus.OPEN)
        .correlate(Lease)
        .scalar_subquery()
    )
    return (
        select(
            Unit.code,
            Lease.id,
            Tenant.name,
            Lease.start_date,
            Lease.end_date,
            Lease.rent_fen,
            Lease.deposit_fen,
            Lease.payment_cycle_months,
            owed,
        )
        .join(Unit, Unit.id == Lease.unit_id)
        .join(Tenant, Tenant.id == Lease.primary_tenant_id)
        .where(*_in_force(property_id, as_of))
        .order_by(Unit.code, Lease.id)
    )


def rent_roll(session: Session, property_id: int, as_of: date) -> list[Row]:
    """The whole rent roll (the report and its CSV)."""
    rows = session.execute(_rent_roll_query(property_id, as_of))
    return [dict(zip(RENT_ROLL_KEYS, r, strict=True)) for r in rows]


def rent_roll_page(
    session: Session, property_id: int, as_of: date, after: tuple[str, int] | None, limit: int
) -> tuple[list[Row], tuple[str, int] | None]:
    """`limit` rows of the rent roll after the (unit code, lease id) `after`, and the key to
    send back for the next page (None on the last)."""
    query = _rent_roll_query(property_id, as_of)
    if after is not None:
        code, lease_id = after
        query = query.where(tuple_(Unit.code, Lease.id) > tuple_(code, lease_id))
    rows = [dict(zip(RENT_ROLL_KEYS, r, strict=True))
            for r in session.execute(query.limit(limit + 1))]  # fmt: skip
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, (rows[-1]["unit"], rows[-1]["lease_id"])


def rent_roll_totals(session: Session, property_id: int, as_of: date) -> Row:
    """What the whole rent roll adds up to: its leases, their monthly rent and open balance."""
    leases, rent = session.execute(
        select(func.count(), _fen_sum(Lease.rent_fen)).where(*_in_force(property_id, as_of))
    ).one()
    in_force = select(Lease.id).where(*_in_force(property_id, as_of))
    owed = session.scalar(
        select(_fen_sum(Invoice.total_fen - Invoice.paid_fen)).where(
            Invoice.status == InvoiceStatus.OPEN, Invoice.lease_id.in_(in_force)
        )
    )
    return {"leases": leases, "monthly_rent_fen": rent, "balance_fen": owed or 0}


def _fen_sum(amount: Any) -> Any:
    """A sum of fen as an integer on every database (PostgreSQL sums bigints as numeric)."""
    return cast(func.coalesce(func.sum(amount), 0), BigInteger)


def ar_aging(session: Session, property_id: int, as_of: date) -> list[Row]:
    """Open balances per lease by days past due: not yet due, 0-30, 31-60, 61-90, over 90."""
    due = Invoice.due_date
    left = Invoice.total_fen - Invoice.paid_fen
    edges = [as_of - timedelta(days=d) for d in (0, 30, 60, 90)]

    def bucket(cond: Any) -> Any:
        return func.sum(case((cond, left), else_=0))

    rows = session.execute(
        select(
            Invoice.lease_id,
            bucket(due >= edges[0]),
            bucket(and_(due < edges[0], due >= edges[1])),
            bucket(and_(due < edges[1], due >= edges[2])),
            bucket(and_(due < edges[2], due >= edges[3])),
            bucket(due < edges[3]),
        )
        .where(
            Invoice.property_id == property_id,
            Invoice.status == InvoiceStatus.OPEN,
            left > 0,
        )
        .group_by(Invoice.lease_id)
        .order_by(Invoice.lease_id)
    )
    out = []
    for lease_id, *amounts in rows:
        row: Row = {"lease_id": lease_id}
        row.update({k: int(v or 0) for k, v in zip(AGING_BUCKETS, amounts, strict=True)})
        row["total_fen"] = sum(int(v or 0) for v in amounts)
        out.append(row)
    return out


def collection_rate(session: Session, property_id: int, start: date, end: date) -> Row:
    """Of what fell due in start..end (deposits excluded from neither), how much is paid."""
    billed, paid = session.execute(
        select(
            func.coalesce(func.sum(Invoice.total_fen), 0),
            func.coalesce(func.sum(Invoice.paid_fen), 0),
        ).where(
            Invoice.property_id == property_id,
            Invoice.due_date >= start,
            Invoice.due_date <= end,
            Invoice.total_fen > 0,
        )
    ).one()
    rate = f"{paid / billed:.4f}" if billed else ""
    return {
        "start": start,
        "end": end,
        "billed_fen": int(billed),
        "collected_fen": int(paid),
        "rate": rate,
    }


def revenue_by_property_month(session: Session, org_id: int, year: int) -> list[Row]:
    """Billed revenue (rent, utilities, common area, late fees, adjustments; no deposits) per
    property and month of issue."""
    rows = session.execute(
        select(
            Invoice.property_id,
            Property.name,
            Invoice.issue_date,
            InvoiceLine.kind,
            func.sum(InvoiceLine.amount_fen),
        )
        .join(InvoiceLine, InvoiceLine.invoice_id == Invoice.id)
        .join(Property, Property.id == Invoice.property_id)
        .where(
            Property.org_id == org_id,
            Invoice.issue_date >= date(year, 1, 1),
            Invoice.issue_date <= date(year, 12, 31),
            InvoiceLine.kind.in_(REVENUE_KINDS),
        )
        .group_by(Invoice.property_id, Property.name, Invoice.issue_date, InvoiceLine.kind)
    )
    table: dict[tuple[int, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for pid, name, issued, kind, amount in rows:
        table[pid, name, f"{issued:%Y-%m}"][str(kind)] += int(amount)
    out = []
    for (pid, name, month), kinds in sorted(table.items()):
        row: Row = {"property_id": pid, "property": name, "month": month}
        row.update({f"{k}_fen": kinds.get(str(k), 0) for k in REVENUE_KINDS})
        row["total_fen"] = sum(kinds.values())
        out.append(row)
    return out


def utility_cost_vs_recovered(session: Session, property_id: int) -> list[Row]:
    """Per billing run: what the master meters cost, what tenants were billed for metered and
    common-area usage, and the operator's own share."""
    recovered = (
        select(Invoice.run_id, func.sum(InvoiceLine.amount_fen).label("recovered"))
        .join(InvoiceLine, InvoiceLine.invoice_id == Invoice.id)
        .where(InvoiceLine.kind.in_([LineKind.UTILITY, LineKind.COMMON_AREA]))
        .group_by(Invoice.run_id)
        .subquery()
    )
    rows = session.execute(
        select(
            BillingRun.period,
            BillingRun.utility_cost_fen,
            BillingRun.operator_cost_fen,
            func.coalesce(recovered.c.recovered, 0),
        )
        .outerjoin(recovered, recovered.c.run_id == BillingRun.id)
        .where(BillingRun.property_id == property_id)
        .order_by(BillingRun.period)
    )
    return [
        {
            "period": period,
            "cost_fen": int(cost),
            "recovered_fen": int(rec),
            "operator_share_fen": int(op),
            "difference_fen": int(rec) - int(cost),
        }
        for period, cost, op, rec in rows
    ]


# A spreadsheet runs a cell that starts with one of these as a formula (DDE: `=cmd|' /C calc'!A0`).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(value: Any) -> Any:
    """Text that a spreadsheet would run is shown as text: a leading apostrophe (OWASP's advice).
    Numbers stay numbers, so a negative amount is still a negative amount."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV with a header row; UTF-8 with BOM so Excel opens Chinese names correctly. Names and
    codes come from tenants and imports, so no text cell may start a formula."""
    rows = list(rows)
    out = io.StringIO()
    out.write("\ufeff")
    if rows:
        # CRLF (RFC 4180): a cell with either CR or LF in it is then quoted, never a new row.
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows({k: inert_cell(v) for k, v in row.items()} for row in rows)
    return out.getvalue()
