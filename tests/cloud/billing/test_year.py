"""A year of a 40-unit building, from meter readings to invoices and payments.

Master and submeters, move-ins and move-outs mid-month, a meter swap, a counter rollover, a late
payer and a deposit settlement. Every total is recomputed here from the scenario itself (daily
usage, rents, areas) with its own arithmetic, not with cloud.billing's functions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from cloud.billing.deposits import Deduction, DeductionKind
from cloud.billing.service import accounts, fees, reports, settlement
from cloud.billing.service.runs import run_billing
from cloud.billing.service.terms import day_start
from cloud.models import (
    BillingRun,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LateFeePolicyRow,
    Lease,
    LeaseStatus,
    MeterSwap,
    Reading,
)
from tests.cloud.billing.world import TZ, World

pytestmark = pytest.mark.slow

YEAR = 2026
TIERS = [(0, 200, Decimal("0.55")), (200, 400, Decimal("0.60")), (400, None, Decimal("0.85"))]
COMMON_PER_DAY = 15
COMMON_PRICE = Decimal("0.60")
LATE_PAYER, LATE_DAYS, LATE_FEE = 3, 20, 5000
ROLLOVER_UNIT, SWAP_UNIT, MOVER, LATE_MOVER, VACANT = 7, 20, 5, 10, 39
SWAP_DAY = date(YEAR, 8, 15)
DAMAGE = 30000
END = date(YEAR + 1, 2, 10)


def days(a: date, b: date) -> list[date]:
    return [a + timedelta(n) for n in range((b - a).days + 1)]


def half_up(x: Fraction) -> int:
    return int((Decimal(x.numerator) / Decimal(x.denominator)).quantize(0, ROUND_HALF_UP))


def tier_cost_fen(kwh: int) -> int:
    cost = Decimal(0)
    for lo, hi, price in TIERS:
        top = kwh if hi is None else min(kwh, hi)
        if top > lo:
            cost += (top - lo) * price
    return int((cost * 100).quantize(Decimal(0), ROUND_HALF_UP))


def month_bounds(y: int, m: int) -> tuple[date, date]:
    first = date(y, m, 1)
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return first, nxt - timedelta(1)


@dataclass
class Plan:
    unit: int
    start: date
    end: date
    rent: int
    cycle: int


def plans() -> list[Plan]:
    out = []
    for i in range(40):
        rent = 200000 + (i % 5) * 30000
        cycle = 3 if i % 4 == 1 else 1
        if i == VACANT:
            continue
        if i == MOVER:
            out.append(Plan(i, date(YEAR, 1, 1), date(YEAR, 6, 15), rent, 1))
            out.append(Plan(i, date(YEAR, 7, 10), date(YEAR, 12, 31), rent + 10000, 1))
        elif i == LATE_MOVER:
            out.append(Plan(i, date(YEAR, 3, 20), date(YEAR, 12, 31), rent, 3))
        else:
            out.append(Plan(i, date(YEAR, 1, 1), date(YEAR, 12, 31), rent, cycle))
    return out


def daily_use(i: int) -> int:
    return 4 + (i % 6) * 2


def area(i: int) -> int:
    return 30 + (i % 4) * 10


def expected_rent(plan: Plan) -> int:
    """Whole rent months, then the last partial one by its days over the rent month's days."""
    total = Fraction(0)
    k = 0
    while True:
        y, m = divmod(plan.start.month - 1 + k, 12)
        month_start = date(plan.start.year + y, m + 1, plan.start.day)  # days <= 28 here
        y2, m2 = divmod(plan.start.month + k, 12)
        nxt = date(plan.start.year + y2, m2 + 1, plan.start.day)
        if month_start > plan.end:
            break
        if nxt - timedelta(1) <= plan.end:
            total += plan.rent
        else:
            total += Fraction(
                plan.rent * ((plan.end - month_start).days + 1), (nxt - month_start).days
            )
        k += 1
    return half_up(total)


class Building:
    def __init__(self, session: Session) -> None:
        self.s = session
        self.w = World(session, "Year Org")
        self.units = [
            self.w.unit(f"F{i // 4 + 1:02d}-{i % 4 + 1}", str(area(i))) for i in range(40)
        ]
        self.meters = [
            self.w.meter(f"y-e{i:02d}", u, digits=4 if i == ROLLOVER_UNIT else 5)
            for i, u in enumerate(self.units)
        ]
        self.master = self.w.meter("y-master", digits=7)
        self.swap_meter = self.w.meter("y-e20b", self.units[SWAP_UNIT])
        self.w.tariff(
            [
                {"lower": str(lo), "upper": "" if hi is None else str(hi), "price": str(p)}
                for lo, hi, p in TIERS
            ],
            common_price=str(COMMON_PRICE),
            common_basis="area",
        )
        session.add(
            LateFeePolicyRow(
                org_id=self.w.org.id,
                property_id=self.w.prop.id,
                kind="fixed",
                amount_fen=LATE_FEE,
                grace_days=3,
            )
        )
        self.plans = plans()
        self.leases: list[Lease] = []
        for p in self.plans:
            lease = self.w.lease(
                self.units[p.unit],
                p.start,
                p.end,
                rent=p.rent,
                cycle=p.cycle,
                status=LeaseStatus.ENDED if p.end.month == 6 else LeaseStatus.ACTIVE,
            )
            self.leases.append(lease)
        self.occupied: dict[int, set[date]] = defaultdict(set)
        for p in self.plans:
            self.occupied[p.unit].update(days(p.start, p.end))
        self._readings()
        session.flush()

    def used_on(self, i: int, day: date) -> int:
        return daily_use(i) if day in self.occupied[i] else 0

    def _readings(self) -> None:
        rows = []
        seq = 10**6
        start = date(YEAR, 1, 1)
        all_days = days(start, date(YEAR + 1, 1, 1))

        def row(meter: str, day: date, value: int, at: datetime | None = None) -> None:
            nonlocal seq
            seq += 1
            ts = at or day_start(day, TZ) - timedelta(minutes=1)
            rows.append(
                {
                    "gateway_id": self.w.gateway,
                    "seq": seq,
                    "meter_id": meter,
                    "point": "import_energy",
                    "value": float(value),
                    "unit": "kWh",
                    "quality": "good",
                    "ts": ts,
                }
            )

        master = 500000
        totals = [9000 if i == ROLLOVER_UNIT else 1000 * i for i in range(40)]
        swap_half = daily_use(SWAP_UNIT) // 2
        new_meter = 0
        for day in all_days:
            # the value at the start of `day`: everything used before it
            for i in range(40):
                if i == SWAP_UNIT and day > SWAP_DAY:
                    row(self.swap_meter.code, day, new_meter)
                else:
                    value = totals[i] % 10000 if i == ROLLOVER_UNIT else totals[i]
                    row(self.meters[i].code, day, value)
            row(self.master.code, day, master)
            for i in range(40):
                u = self.used_on(i, day)
                if i == SWAP_UNIT and day == SWAP_DAY:
                    self.s.add(
                        MeterSwap(
                            old_meter_id=self.meters[i].id,
                            new_meter_id=self.swap_meter.id,
                            swapped_at=day_start(day, TZ) + timedelta(hours=12),
                            old_final=Decimal(totals[i] + swap_half),
                            new_initial=Decimal(0),
                        )
                    )
                    new_meter = u - swap_half
                elif i == SWAP_UNIT and day > SWAP_DAY:
                    new_meter += u
                totals[i] += u
                master += u
            master += COMMON_PER_DAY
        self.s.execute(insert(Reading), rows)

    def pay_due(self, today: date) -> None:
        """Tenants pay on the due date; the late payer twenty days after it."""
        open_ = self.s.execute(
            select(Invoice.lease_id, Invoice.due_date, Invoice.total_fen - Invoice.paid_fen).where(
                Invoice.property_id == self.w.prop.id,
                Invoice.status == InvoiceStatus.OPEN,
                Invoice.due_date <= today,
            )
        ).all()
        owed: dict[int, int] = defaultdict(int)
        late = {
            lease.id
            for p, lease in zip(self.plans, self.leases, strict=True)
            if p.unit == LATE_PAYER
        }
        for lease_id, due, left in open_:
            if lease_id not in late or due <= today - timedelta(LATE_DAYS):
                owed[lease_id] += left
        at = datetime.combine(today, time(10), TZ).astimezone(UTC)
        for lease in self.leases:
            if owed.get(lease.id, 0) > 0:
                accounts.record_payment(self.s, lease, owed[lease.id], received_at=at)


def test_a_year_of_a_forty_unit_building(session: Session) -> None:
    b = Building(session)
    pid = b.w.prop.id
    aging_snapshot: list[dict[str, object]] = []
    for today in days(date(YEAR, 1, 1), END):
        now = datetime.combine(today, time(2), TZ).astimezone(UTC)
        if today.day == 1:
            run_billing(session, pid, f"{today:%Y-%m}", now=now, tz=TZ)
        b.pay_due(today)
        fees.charge_late_fees(session, pid, today=today, now=now)
        if today == date(YEAR, 7, 2):  # the mover's deposit, after June's utilities are billed
            mover = b.leases[[p.unit for p in b.plans].index(MOVER)]
            damage = Deduction(DeductionKind.DAMAGE, DAMAGE, "wall repainted")
            figures, _ = settlement.settle(session, mover, [damage], on=today, now=now)
        if today == date(YEAR, 6, 30):
            aging_snapshot = reports.ar_aging(session, pid, today)
    session.flush()

    lines = session.execute(
        select(
            InvoiceLine.lease_id,
            InvoiceLine.kind,
            InvoiceLine.period_start,
            InvoiceLine.quantity,
            InvoiceLine.amount_fen,
        )
    ).all()
    by_lease: dict[int, dict[str, list[tuple[date, Decimal | None, int]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for lease_id, kind, start, q, amount in lines:
        by_lease[lease_id][str(kind)].append((start, q, amount))

    # rent and deposits, lease by lease
    for plan, lease in zip(b.plans, b.leases, strict=True):
        rent = sum(a for _, _, a in by_lease[lease.id]["rent"])
        assert rent == expected_rent(plan), (plan, rent)
        assert [a for _, _, a in by_lease[lease.id]["deposit"]] == [plan.rent]

    # metered usage and its tiered price, month by month (rollover and swap units included)
    for plan, lease in zip(b.plans, b.leases, strict=True):
        got = sorted((s, q, a) for s, q, a in by_lease[lease.id]["utility"])
        want = []
        for m in range(1, 13):
            first, last = month_bounds(YEAR, m)
            span = days(max(first, plan.start), min(last, plan.end))
            if span:
                used = sum(b.used_on(plan.unit, d) for d in span)
                want.append((span[0], used, tier_cost_fen(used)))
        assert [(s, int(q or 0), a) for s, q, a in got] == want, plan

    # common area: the month's amount splits exactly between tenants and the operator, and
    # every tenant's share is within a fen of its exact area-and-days share
    runs = {r.period: r for r in session.scalars(select(BillingRun))}
    for m in range(1, 13):
        first, last = month_bounds(YEAR, m)
        ndays = (last - first).days + 1
        amount = half_up(Fraction(COMMON_PER_DAY * ndays) * Fraction(COMMON_PRICE) * 100)
        run = runs[f"{YEAR + (m == 12)}-{m % 12 + 1:02d}"]
        shares = {
            lid: a
            for lid, kinds in by_lease.items()
            for s, _, a in kinds["common_area"]
            if first <= s <= last
        }
        assert sum(shares.values()) + run.operator_cost_fen == amount
        for plan, lease in zip(b.plans, b.leases, strict=True):
            occ = len([d for d in days(first, last) if plan.start <= d <= plan.end])
            if occ:
                exact = Fraction(
                    amount * area(plan.unit) * occ, sum(area(i) for i in range(40)) * ndays
                )
                assert abs(shares[lease.id] - exact) < 1, (m, plan)
        master_used = sum(b.used_on(i, d) for i in range(40) for d in days(first, last))
        master_used += COMMON_PER_DAY * ndays
        assert run.utility_cost_fen == half_up(Fraction(master_used) * Fraction(COMMON_PRICE) * 100)

    # the late payer paid one fixed late fee per bill; nobody else paid any
    late_lease_ids = [
        lease.id for p, lease in zip(b.plans, b.leases, strict=True) if p.unit == LATE_PAYER
    ]
    fee_lines = [(lid, a) for lid, kinds in by_lease.items() for _, _, a in kinds["late_fee"]]
    assert {lid for lid, _ in fee_lines} == set(late_lease_ids)
    late_bills = session.scalar(
        select(func.count())
        .select_from(Invoice)
        .where(
            Invoice.lease_id.in_(late_lease_ids),
            Invoice.total_fen > 0,
            ~Invoice.number.like("LF-%"),
        )
    )
    assert sum(a for _, a in fee_lines) == LATE_FEE * late_bills

    # the mover's deposit paid the unpaid final utilities and the damage; the rest came back
    assert figures.final_bill == 0
    assert figures.refund > 0
    # everything billed was paid by February 10th: the books reconcile to zero
    for lease in b.leases:
        assert accounts.balance(session, lease.id) == 0, lease.id
    assert reports.ar_aging(session, pid, END) == []
    # on June 30 the late payer (only) owed what fell due in the twenty days before
    assert [r["lease_id"] for r in aging_snapshot] == late_lease_ids
    assert aging_snapshot[0]["d61_90"] == 0
    assert aging_snapshot[0]["total_fen"] > 0

    # re-running every month changes nothing
    before = session.scalar(select(func.count()).select_from(InvoiceLine))
    for m in range(1, 14):
        run_billing(session, pid, f"{YEAR + (m == 13)}-{(m - 1) % 12 + 1:02d}", now=END_NOW, tz=TZ)
    assert session.scalar(select(func.count()).select_from(InvoiceLine)) == before

    rate = reports.collection_rate(session, pid, date(YEAR, 1, 1), date(YEAR, 12, 31))
    assert rate["rate"] == "1.0000"
    roll = reports.rent_roll(session, pid, date(YEAR, 8, 1))
    assert len(roll) == 39  # every unit but the vacant one
    revenue = reports.revenue_by_property_month(session, b.w.org.id, YEAR)
    assert len(revenue) == 12
    rent_total = sum(r["rent_fen"] for r in revenue)
    assert rent_total == sum(expected_rent(p) for p in b.plans)


END_NOW = datetime(YEAR + 1, 2, 11, tzinfo=UTC)
