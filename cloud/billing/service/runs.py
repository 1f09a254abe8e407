"""Billing runs: one per property and month, idempotent, never altering invoiced periods.

The run for month M bills the rent periods falling due in M (and any earlier ones not yet
billed) and the utilities used in M-1: each submeter's usage and each unit's common-area share.
Every line has a natural key (lease, kind, meter, period start) with a unique constraint, and the
run only creates lines whose key is not there yet, so re-running it creates nothing new, and a
period once invoiced is never re-priced. New lines of a lease go on one new invoice.

A run is three steps: service/snapshot.py loads the property's month, the pure rules of
billing/month_rules.py turn it into typed lines and holds, and service/invoices.py writes the
lines as invoices (deposit settlement writes through it too). This module holds the loop, the
per-item guard and the holds it records.

A run never fails as a whole for one bad lease, meter or tariff: each is billed inside its own
guard, and one that raises or whose result is out of bounds is left out, held for review with
the reason, and listed in the run's `skipped`. Rent periods older than `max_back_months` before
the run's month are not billed at once either: they wait as one back-rent hold per lease until
an operator releases it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cloud.billing import bounds
from cloud.billing.consumption import usage
from cloud.billing.errors import BillingError, ReadingRejectedError
from cloud.billing.lines import Line
from cloud.billing.month_rules import (
    Held,
    Measured,
    Tenancy,
    Unbilled,
    Unreadable,
    common_area_lines,
    rent_lines,
    utility_line,
)
from cloud.billing.service.accounts import apply_credit, unapplied
from cloud.billing.service.invoices import Bill, write_bills
from cloud.billing.service.meters import MeterUsage, UnitMeters, span_usage
from cloud.billing.service.repairs import repair_lines
from cloud.billing.service.snapshot import MasterMeter, MonthSnapshot, load_month
from cloud.billing.service.terms import (
    LeaseRow,
    Month,
    TariffTerms,
    check_tariff,
    day_after,
    day_start,
    effective_end,
    tou_zones,
)
from cloud.models import (
    BillingRun,
    HoldKind,
    Invoice,
    Lease,
    LineKind,
    TariffKind,
    UsageHold,
    Utility,
)
from cloud.progress import Report, ignore

log = logging.getLogger(__name__)

UTILITY_DUE_DAYS = 10  # an invoice with no rent on it is due this long after issue
READING_MAX = Decimal("99999999999999.9999")  # what the Numeric(18, 4) reading columns hold


@dataclass
class _Draft:
    """The lines a run is about to add, grouped by lease."""

    lines: dict[int, list[Line]] = field(default_factory=lambda: defaultdict(list))
    flags: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    operator_cost: int = 0
    utility_cost: int = 0
    journal: list[int] = field(default_factory=list)  # the lease of each line, in order added

    def add(self, line: Line) -> None:
        _in_bounds(line)
        self.lines[line.lease_id].append(line)
        self.journal.append(line.lease_id)

    def mark(self) -> tuple[int, int, int]:
        return len(self.journal), self.operator_cost, self.utility_cost

    def undo(self, mark: tuple[int, int, int]) -> None:
        """Drop what was added since `mark`: a failed item leaves no part of itself behind."""
        n, self.operator_cost, self.utility_cost = mark
        while len(self.journal) > n:
            lease_id = self.journal.pop()
            self.lines[lease_id].pop()
            if not self.lines[lease_id]:
                del self.lines[lease_id]

    def bills(self, lease_id: int, default_due: date) -> dict[date, list[Line]]:
        """The lease's new lines as bills by due date; lines with no due date of their own
        (utilities) join the latest rent bill of the run, or a bill of their own."""
        dues = [line.due for line in self.lines[lease_id] if line.due is not None]
        fallback = max(dues) if dues else default_due
        bills: dict[date, list[Line]] = defaultdict(list)
        for line in self.lines[lease_id]:
            bills[line.due or fallback].append(line)
        return dict(sorted(bills.items()))


def _in_bounds(line: Line) -> None:
    """An out-of-bounds result is refused like an out-of-bounds input: the item is flagged."""
    bounds.check_fen(line.amount, "line amount", signed=True, high=bounds.MAX_LINE_FEN)
    if line.quantity is not None:
        bounds.check_decimal(line.quantity, "quantity", high=bounds.MAX_QUANTITY)
    for name in ("previous_reading", "current_reading"):
        if (reading := getattr(line, name)) is not None:
            bounds.check_decimal(Decimal(reading), name, low=-READING_MAX, high=READING_MAX)


def run_billing(
    session: Session,
    property_id: int,
    period: str,
    *,
    now: datetime,
    tz: ZoneInfo,
    max_back_months: int = bounds.MAX_BACK_MONTHS,
    progress: Report = ignore,
) -> BillingRun:
    """Create (or re-run) the billing run of `property_id` for month `period` ("YYYY-MM") of
    local days in `tz` (ANJU_TIMEZONE). Rent periods ending before the `max_back_months`
    months ahead of `period` are held. `progress` hears each phase's items done of its total
    (rent and utilities: leases; common area: master meters; repairs: lines; writing: bills)."""
    snap = load_month(session, property_id, Month.parse(period), tz)
    return bill_month(session, snap, now=now, max_back_months=max_back_months, progress=progress)


def bill_month(
    session: Session,
    snap: MonthSnapshot,
    *,
    now: datetime,
    max_back_months: int = bounds.MAX_BACK_MONTHS,
    progress: Report = ignore,
) -> BillingRun:
    """The run over a loaded month: what it bills comes from `snap` alone (repairs aside),
    and what it writes goes through the session."""
    property_id, month = snap.property_id, snap.month
    run = session.scalar(
        select(BillingRun).where(
            BillingRun.property_id == property_id, BillingRun.period == str(month)
        )
    )
    if run is None:
        run = BillingRun(property_id=property_id, period=str(month), started_at=now, flags=[])
        session.add(run)
        session.flush()
    job = _Run(session, snap, max_back_months, progress=progress)
    job.rent()
    job.utilities()
    job.repairs()
    draft = job.draft
    invoices = job.write(run, now)
    for lease_id in sorted(unapplied(session, job.lease_q)):
        apply_credit(session, lease_id)  # credit waiting for these new bills
    run.finished_at = now
    run.invoices_created += invoices
    run.lines_created += sum(len(v) for v in draft.lines.values())
    if not run.operator_cost_fen and not run.utility_cost_fen:
        run.operator_cost_fen, run.utility_cost_fen = draft.operator_cost, draft.utility_cost
    run.flags = sorted(set(run.flags or []) | set(draft.flags))
    run.skipped = draft.skipped
    session.flush()
    progress("writing", invoices, invoices)
    log.info(
        "billing run %s %s: %d invoices, %d lines, %d flags, %d skipped",
        property_id,
        month,
        invoices,
        sum(len(v) for v in draft.lines.values()),
        len(draft.flags),
        len(draft.skipped),
    )
    return run


@dataclass(slots=True)
class _Outcome:
    failed: str = ""  # the reason, once the guarded item failed


class _Run:
    def __init__(
        self, session: Session, snap: MonthSnapshot, max_back_months: int, *, progress: Report
    ) -> None:
        self.session = session
        self.progress = progress
        self.snap = snap
        self.tz = snap.tz
        self.property_id = snap.property_id
        self.month = snap.month
        self.max_back = max_back_months
        self.used = snap.used
        self.leases = self.snap.leases
        self.lease_q = select(Lease.id).where(Lease.property_id == self.property_id)
        self.existing = self.snap.existing
        self.draft = _Draft()
        self.book = self.snap.readings
        self.tenancies: list[Tenancy] = []  # the leases' days in the usage month
        self.lease_usage: dict[Utility, dict[int, Decimal]] = defaultdict(dict)  # by lease
        self.usage_cache: dict[tuple[int, str, date, date], MeterUsage | ReadingRejectedError] = {}

    # ---- guarding each item ---------------------------------------------------------------

    @contextmanager
    def _guard(
        self, lease_id: int | None, item: str, *, meter: str = "", start: date | None = None
    ) -> Iterator[_Outcome]:
        """Bill one item (a lease's rent, a meter line, a tariff, a building's common area).
        If it raises, or a line it makes is out of bounds, its lines are dropped, it is held
        for review (a lease's item) and listed in `skipped`; the run goes on."""
        mark, outcome = self.draft.mark(), _Outcome()
        try:
            yield outcome
        except SQLAlchemyError:
            raise  # the database failed, not this item: the run fails and is retried whole
        except Exception as exc:  # one bad stored value must not stop the run
            self.draft.undo(mark)
            if isinstance(exc, BillingError):
                outcome.failed = str(exc)
            else:  # a fault of ours or a value no check foresaw: keep the stack in the log
                outcome.failed = f"{type(exc).__name__}: {exc}"
                log.warning("billing run %s: %s failed", self.property_id, item, exc_info=True)
            self._skip(lease_id, item, outcome.failed)
            if lease_id is not None:
                self._hold(lease_id, meter, start or self.month.first, outcome.failed,
                           kind=HoldKind.ERROR)  # fmt: skip

    def _skip(self, lease_id: int | None, item: str, reason: str) -> None:
        self.draft.skipped.append({"lease_id": lease_id, "item": item, "reason": reason})
        who = f"lease {lease_id} " if lease_id is not None else ""
        self.draft.flags.append(f"skipped: {who}{item}: {reason}")

    def _hold(
        self,
        lease_id: int,
        meter: str,
        start: date,
        reason: str,
        *,
        kind: HoldKind,
        quantity: Decimal | None = None,
        end: date | None = None,
    ) -> None:
        """Hold an item for review; one already there (released, say, and failing again) goes
        back to review with the new reason."""
        found = self.session.scalar(
            select(UsageHold).where(
                UsageHold.lease_id == lease_id,
                UsageHold.meter_id == meter,
                UsageHold.period_start == start,
            )
        )
        if found is None:
            found = UsageHold(property_id=self.property_id, lease_id=lease_id, meter_id=meter,
                              period_start=start,
                              created_at=day_after(self.used.last, self.tz))  # fmt: skip
            self.session.add(found)
        found.kind, found.reason, found.released = kind, reason, False
        if quantity is not None:
            found.quantity = quantity
        if end is not None:
            found.period_end = end

    # ---- rent -----------------------------------------------------------------------------

    def rent(self) -> None:
        self.progress("rent", 0, len(self.leases))
        for n, lease in enumerate(self.leases, 1):
            record = self.snap.rent[lease.id]
            with self._guard(lease.id, "rent"):
                rent = rent_lines(lease, record, month=self.month, max_back=self.max_back)
                if (held := rent.held) is not None:
                    self._hold(lease.id, "", held.start, held.reason, kind=HoldKind.BACK_RENT,
                               quantity=Decimal(held.periods), end=held.end)  # fmt: skip
                    self._skip(lease.id, "back rent", held.reason)
                for line in rent.lines:
                    self.draft.add(line)
            self.progress("rent", n, len(self.leases))

    # ---- metered utilities ----------------------------------------------------------------

    def utilities(self) -> None:
        tariffs = dict(self.snap.tariffs)
        if not tariffs:
            return
        self.chains = self.snap.chains
        for utility, tariff in list(tariffs.items()):
            with self._guard(None, f"{utility} tariff {tariff.id}") as outcome:
                check_tariff(tariff)  # stored: it may predate the bounds
            if outcome.failed:
                del tariffs[utility]  # nothing of that utility is billed until it is fixed
        by_unit: dict[int, list[tuple[Utility, UnitMeters]]] = defaultdict(list)
        for (unit_id, utility), chain in self.chains.items():
            by_unit[unit_id].append((utility, chain))
        self.progress("utilities", 0, len(self.leases))
        for n, lease in enumerate(self.leases, 1):
            self.progress("utilities", n - 1, len(self.leases))
            start = max(lease.start_date, self.used.first)
            end = min(effective_end(lease), self.used.last)
            if start > end:
                continue
            self.tenancies.append(
                Tenancy(lease.id, lease.unit_id, start, end, lease.occupant_count)
            )
            for utility, chain in by_unit.get(lease.unit_id, []):
                found = tariffs.get(utility)
                if found is None:
                    continue
                meter = chain.meters[-1].id
                with self._guard(lease.id, f"{utility} meter {meter}", meter=meter, start=start):
                    self._meter_line(
                        lease, start=start, end=end, utility=utility, chain=chain, tariff=found
                    )
        self.progress("utilities", len(self.leases), len(self.leases))
        self._common_area(tariffs)

    def _meter_line(
        self,
        lease: LeaseRow,
        *,
        start: date,
        end: date,
        utility: Utility,
        chain: UnitMeters,
        tariff: TariffTerms,
    ) -> None:
        got: Measured | Unreadable
        try:
            got = self._measure(chain, tariff, start, end)
            bounds.check_decimal(got.quantity, "usage", high=bounds.MAX_QUANTITY)
            self.lease_usage[utility][lease.id] = got.quantity
        except ReadingRejectedError as exc:
            got = Unreadable(chain.meters[-1].id, str(exc))
        if (lease.id, str(LineKind.UTILITY), got.meter_id, start) in self.existing:
            return
        if lease.id in self.snap.prepaid:
            return
        hold = self.snap.holds.get((lease.id, got.meter_id, start))
        baseline = self.snap.baselines.get((lease.id, got.meter_id))
        result = utility_line(lease.id, start=start, end=end, utility=utility, tariff=tariff,
                              got=got, hold=hold, baseline=baseline)  # fmt: skip
        if isinstance(result, Line):
            self.draft.add(result)
        elif isinstance(result, Held):
            self._hold(lease.id, result.meter_id, start, result.reason or "no usage",
                       kind=HoldKind.USAGE, quantity=result.quantity)  # fmt: skip
            self.draft.flags.append(
                f"held: lease {lease.id} meter {result.meter_id}: {result.reason}"
            )
        elif isinstance(result, Unbilled):
            self.draft.flags.append(result.flag)

    def _measure(self, chain: UnitMeters, tariff: TariffTerms, start: date, end: date) -> Measured:
        """A unit's usage over a span: its one register, or the sum of its zone registers."""
        if tariff.kind is not TariffKind.TIME_OF_USE:
            return Measured.of(self._usage(chain, tariff.point, start, end))
        zones = {z.name: self._usage(chain, z.point, start, end) for z in tou_zones(tariff)}
        return Measured.of_zones(zones)

    def _usage(self, chain: UnitMeters, point: str, start: date, end: date) -> MeterUsage:
        """span_usage, once per unit and span: common area re-reads every unit's month."""
        key = (id(chain), point, start, end)
        got = self.usage_cache.get(key)
        if got is None:
            try:
                got = span_usage(self.book, chain, point, start, end, tz=self.tz)
            except ReadingRejectedError as exc:
                got = exc
            self.usage_cache[key] = got
        if isinstance(got, ReadingRejectedError):
            raise got
        return got

    # ---- common area ----------------------------------------------------------------------

    def _common_area(self, tariffs: dict[Utility, TariffTerms]) -> None:
        units = self.snap.units
        for n, master in enumerate(self.snap.masters):
            self.progress("common area", n, len(self.snap.masters))
            tariff = tariffs.get(master.utility)
            if tariff is None:
                continue
            in_building = [(uid, area) for uid, bid, area in units if bid == master.building_id]
            with self._guard(None, f"common area {master.code}"):
                self._building_common(master, tariff, in_building)

    def _building_common(
        self, master: MasterMeter, tariff: TariffTerms, in_building: list[tuple[int, Decimal]]
    ) -> None:
        """One master meter's month: its usage and its submeters' (a reading missing is a
        flag), then common_area_lines."""
        t0, t1 = day_start(self.used.first, self.tz), day_after(self.used.last, self.tz)
        try:
            before = self.book.at(master.code, tariff.point, t0)
            after = self.book.at(master.code, tariff.point, t1)
            master_used = usage(before, after, digits=master.digits).quantity
            subs = [
                self._measure(
                    self.chains[uid, master.utility], tariff, self.used.first, self.used.last
                ).quantity
                for uid, _ in in_building
                if (uid, master.utility) in self.chains
            ]
        except ReadingRejectedError as exc:
            self.draft.flags.append(f"common area {master.code} not billed: {exc}")
            return
        units = {uid for uid, _ in in_building}
        shared = common_area_lines(
            master=master.code,
            utility=master.utility,
            tariff=tariff,
            master_used=master_used,
            submeters=subs,
            units=in_building,
            tenancies=[t for t in self.tenancies if t.unit_id in units],
            usage=self.lease_usage[master.utility],
            month=self.used,
        )
        self.draft.utility_cost += shared.utility_cost
        self.draft.operator_cost += shared.operator_cost
        self.draft.flags.extend(shared.flags)
        for line in shared.lines:
            if (line.lease_id, str(line.kind), line.meter, line.start) not in self.existing:
                self.draft.add(line)

    # ---- repairs charged to tenants -------------------------------------------------------

    def repairs(self) -> None:
        lines = repair_lines(self.session, self.lease_q, fallback=self.month.first, tz=self.tz)
        for n, line in enumerate(lines):
            self.progress("repairs", n, len(lines))
            with self._guard(line.lease_id, f"repair {line.meter}"):
                self.draft.add(line)

    # ---- writing --------------------------------------------------------------------------

    def write(self, run: BillingRun, now: datetime) -> int:
        draft = self.draft
        if not draft.lines:
            return 0
        counts: dict[int, int] = dict(
            self.session.execute(
                select(Invoice.lease_id, func.count())
                .where(Invoice.property_id == self.property_id, Invoice.run_id == run.id)
                .group_by(Invoice.lease_id)
            ).all()
        )
        bills = []
        default_due = self.month.first + timedelta(days=UTILITY_DUE_DAYS)
        for lease_id in sorted(draft.lines):
            n = counts.get(lease_id, 0)
            for due, lines in draft.bills(lease_id, default_due).items():
                n += 1
                number = f"P{self.property_id}-{self.month}-L{lease_id}-{n}"
                bills.append(Bill(number, lease_id, self.month.first, due, lines))
        self.progress("writing", 0, len(bills))
        return len(write_bills(self.session, self.property_id, bills, now=now, run_id=run.id))
