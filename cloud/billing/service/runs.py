"""Billing runs: one per property and month, idempotent, never altering invoiced periods.

The run for month M bills the rent periods falling due in M (and any earlier ones not yet
billed) and the utilities used in M-1: each submeter's usage and each unit's common-area share.
Every line has a natural key (lease, kind, meter, period start) with a unique constraint, and the
run only creates lines whose key is not there yet, so re-running it creates nothing new, and a
period once invoiced is never re-priced. New lines of a lease go on one new invoice.

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
from fractions import Fraction
from itertools import takewhile
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cloud.billing import bounds
from cloud.billing.allocation import OPERATOR, Basis, UnitBasis, allocate, common_usage
from cloud.billing.consumption import spike_check, usage
from cloud.billing.errors import BillingError, ReadingRejectedError
from cloud.billing.lines import Line
from cloud.billing.money import price, round_half_up, split, yuan
from cloud.billing.proration import Prorated
from cloud.billing.schedule import LeaseTerms, Period, periods, rent_for
from cloud.billing.service.accounts import apply_credit, unapplied
from cloud.billing.service.invoices import Bill, write_bills
from cloud.billing.service.meters import MeterUsage, ReadingBook, span_usage, unit_meters
from cloud.billing.service.terms import (
    LeaseRow,
    Month,
    check_tariff,
    day_after,
    day_start,
    effective_end,
    lease_terms,
    tariff_price,
    tou_price,
    tou_zones,
)
from cloud.models import (
    BillingRun,
    HoldKind,
    Invoice,
    InvoiceLine,
    Lease,
    LeaseStatus,
    LineKind,
    Meter,
    MeterKind,
    PrepaidAccount,
    Tariff,
    TariffKind,
    Unit,
    UsageHold,
    Utility,
)

log = logging.getLogger(__name__)

BILLABLE = (LeaseStatus.SIGNED, LeaseStatus.ACTIVE, LeaseStatus.ENDED, LeaseStatus.TERMINATED)
UTILITY_DUE_DAYS = 10  # an invoice with no rent on it is due this long after issue
DAY = timedelta(days=1)
Key = tuple[int, str, str, date]  # lease, kind, meter, period start
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
) -> BillingRun:
    """Create (or re-run) the billing run of `property_id` for month `period` ("YYYY-MM") of
    local days in `tz` (ANJU_TIMEZONE). Rent periods ending before the `max_back_months`
    months ahead of `period` are held."""
    month = Month.parse(period)
    run = session.scalar(
        select(BillingRun).where(
            BillingRun.property_id == property_id, BillingRun.period == str(month)
        )
    )
    if run is None:
        run = BillingRun(property_id=property_id, period=str(month), started_at=now, flags=[])
        session.add(run)
        session.flush()
    job = _Run(session, property_id, month, max_back_months, tz)
    job.rent()
    job.utilities()
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


Span = tuple[LeaseRow, date, date]  # a lease's days inside the usage month


@dataclass(frozen=True, slots=True)
class Measured:
    """A unit's usage over a span: from one register (`single`) or per time-of-use zone."""

    meter_id: str
    quantity: Decimal
    single: MeterUsage | None = None
    zones: dict[str, MeterUsage] | None = None
    rollover: bool = False
    replaced: bool = False

    @classmethod
    def of(cls, got: MeterUsage) -> Measured:
        return cls(got.meter_id, got.usage.quantity, got, None, got.usage.rollover,
                   got.usage.replaced)  # fmt: skip

    @classmethod
    def of_zones(cls, zones: dict[str, MeterUsage]) -> Measured:
        used = list(zones.values())
        return cls(
            used[0].meter_id,
            sum((u.usage.quantity for u in used), Decimal(0)),
            None,
            zones,
            any(u.usage.rollover for u in used),
            any(u.usage.replaced for u in used),
        )


@dataclass(slots=True)
class _Outcome:
    failed: str = ""  # the reason, once the guarded item failed


class _Run:
    def __init__(
        self, session: Session, property_id: int, month: Month, max_back_months: int, tz: ZoneInfo
    ) -> None:
        self.session = session
        self.tz = tz
        self.property_id = property_id
        self.month = month
        self.max_back = max_back_months
        y, m = divmod(month.year * 12 + month.month - 1 - max_back_months, 12)
        self.cutoff = date(y, m + 1, 1)  # rent periods ending before this are back rent
        self.used = month.previous()
        self.leases = [
            LeaseRow(*row)
            for row in session.execute(
                select(*LeaseRow.columns())
                .where(
                    Lease.property_id == property_id,
                    Lease.status.in_(BILLABLE),
                    Lease.start_date <= month.last,
                    Lease.end_date >= self.used.first,
                )
                .order_by(Lease.id)
            )
        ]
        self.lease_q = select(Lease.id).where(Lease.property_id == property_id)
        self.existing = self._existing_keys()
        self.draft = _Draft()
        self.book = ReadingBook(session, property_id)
        self.spans: dict[int, list[Span]] = defaultdict(list)  # by unit
        self.lease_usage: dict[tuple[int, Utility], Decimal] = {}
        self.usage_cache: dict[tuple[int, str, date, date], MeterUsage | ReadingRejectedError] = {}

    def _existing_keys(self) -> set[Key]:
        rows = self.session.execute(
            select(
                InvoiceLine.lease_id,
                InvoiceLine.kind,
                InvoiceLine.meter_key,
                InvoiceLine.period_start,
            ).where(
                InvoiceLine.lease_id.in_(self.lease_q),
                InvoiceLine.period_start >= self.used.first,
                InvoiceLine.kind.in_([LineKind.UTILITY, LineKind.COMMON_AREA]),
            )
        )
        return {(lid, str(kind), meter, start) for lid, kind, meter, start in rows}

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
        through: dict[int, date] = dict(
            self.session.execute(
                select(InvoiceLine.lease_id, func.max(InvoiceLine.period_end))
                .where(InvoiceLine.lease_id.in_(self.lease_q), InvoiceLine.kind == LineKind.RENT)
                .group_by(InvoiceLine.lease_id)
            ).all()
        )
        deposited = set(
            self.session.scalars(
                select(InvoiceLine.lease_id).where(
                    InvoiceLine.lease_id.in_(self.lease_q), InvoiceLine.kind == LineKind.DEPOSIT
                )
            )
        )
        back: dict[int, list[UsageHold]] = defaultdict(list)
        for hold in self.session.scalars(
            select(UsageHold).where(
                UsageHold.property_id == self.property_id, UsageHold.kind == HoldKind.BACK_RENT
            )
        ):
            back[hold.lease_id].append(hold)
        billed: dict[int, set[date]] = defaultdict(set)
        for lease_id, start in self.session.execute(
            select(InvoiceLine.lease_id, InvoiceLine.period_start).where(
                InvoiceLine.lease_id.in_(list(back)), InvoiceLine.kind == LineKind.RENT
            )
        ):
            billed[lease_id].add(start)
        for lease in self.leases:
            with self._guard(lease.id, "rent"):
                self._lease_rent(
                    lease,
                    through.get(lease.id),
                    back.get(lease.id, []),
                    billed[lease.id],
                    deposited=lease.id in deposited,
                )

    def _lease_rent(
        self,
        lease: LeaseRow,
        after: date | None,
        holds: list[UsageHold],
        billed: set[date],
        *,
        deposited: bool,
    ) -> None:
        """The lease's rent due by the end of the month: at most `max_back` months of it
        before the month (older periods become one back-rent hold), plus held back rent an
        operator released."""
        terms = lease_terms(lease)
        if terms is None:
            return
        if after is not None and after > terms.end:
            self._termination_credit(lease, terms.end)
            return
        due = list(self._due(terms, after))
        released = [
            p
            for h in holds
            if h.released and h.period_end is not None and h.period_start not in billed
            for p in self._due(terms, h.period_start - DAY)
            if p.end <= h.period_end
        ]
        held = [(h.period_start, h.period_end or h.period_start) for h in holds]
        fresh = [p for p in due if not any(a <= p.start and p.end <= b for a, b in held)]
        old = [p for p in fresh if p.end < self.cutoff]
        bill = sorted(released + fresh[len(old) :], key=lambda p: p.start)
        if old:
            reason = (
                f"{len(old)} rent period(s) {old[0].start} to {old[-1].end} "
                f"({yuan(sum(p.rent for p in old))}) end more than {self.max_back} month(s) "
                f"before {self.month}; release the hold to bill them"
            )
            self._hold(lease.id, "", old[0].start, reason, kind=HoldKind.BACK_RENT,
                       quantity=Decimal(len(old)), end=old[-1].end)  # fmt: skip
            self._skip(lease.id, "back rent", reason)
        if old and old[0].deposit and not deposited:  # the deposit is not a month's rent
            self._deposit(lease, terms, old[0], bill[0].due if bill else self.month.first)
        for p in bill:
            self._rent_line(lease, terms, p)
            if p.deposit and not deposited:
                self._deposit(lease, terms, p, p.due)

    def _due(self, terms: LeaseTerms, after: date | None) -> Iterator[Period]:
        last = self.month.last
        return takewhile(lambda p: p.due <= last, periods(terms, after=after, due_by=last))

    def _deposit(self, lease: LeaseRow, terms: LeaseTerms, first: Period, due: date) -> None:
        self.draft.add(
            Line(
                lease_id=lease.id,
                kind=LineKind.DEPOSIT,
                start=first.start,
                end=terms.end,
                amount=first.deposit,
                description="Deposit",
                due=due,
            )
        )

    def _rent_line(self, lease: LeaseRow, terms: LeaseTerms, p: Period) -> None:
        explain = Prorated(p.rent, p.months).explain(terms.monthly_rent)
        self.draft.add(
            Line(
                lease_id=lease.id,
                kind=LineKind.RENT,
                start=p.start,
                end=p.end,
                amount=p.rent,
                description=f"Rent {p.start} to {p.end}",
                due=p.due,
                detail={"explain": explain, "monthly_rent_fen": terms.monthly_rent},
            )
        )

    def _termination_credit(self, lease: LeaseRow, end: date) -> None:
        """Rent already billed for days after an early termination comes back as one credit."""
        done = self.session.scalar(
            select(InvoiceLine.id).where(
                InvoiceLine.lease_id == lease.id,
                InvoiceLine.kind == LineKind.ADJUSTMENT,
                InvoiceLine.period_start == end + DAY,
            )
        )
        terms = lease_terms(lease)
        if done is not None or terms is None:
            return
        credit = 0
        for line in self.session.scalars(
            select(InvoiceLine).where(
                InvoiceLine.lease_id == lease.id,
                InvoiceLine.kind == LineKind.RENT,
                InvoiceLine.period_end > end,
            )
        ):
            kept = rent_for(terms, line.period_start, end) if line.period_start <= end else 0
            credit += kept - line.amount_fen
        if credit:
            self.draft.add(
                Line(
                    lease_id=lease.id,
                    kind=LineKind.ADJUSTMENT,
                    start=end + DAY,
                    end=end + DAY,
                    amount=credit,
                    description=f"Rent credit: lease ended early on {end}",
                    due=end + DAY,
                )
            )

    # ---- metered utilities ----------------------------------------------------------------

    def utilities(self) -> None:
        tariffs = self._tariffs()
        if not tariffs:
            return
        self.prepaid = set(
            self.session.scalars(
                select(PrepaidAccount.lease_id).where(PrepaidAccount.lease_id.in_(self.lease_q))
            )
        )
        self.chains = unit_meters(self.session, self.property_id)
        t0, t1 = day_start(self.used.first, self.tz), day_after(self.used.last, self.tz)
        for utility, tariff in list(tariffs.items()):
            with self._guard(None, f"{utility} tariff {tariff.id}") as outcome:
                check_tariff(tariff)  # stored: it may predate the bounds
                for point in self._points(tariff):
                    self.book.preload(point, t0)
                    self.book.preload(point, t1)
            if outcome.failed:
                del tariffs[utility]  # nothing of that utility is billed until it is fixed
        self.holds = {
            (h.lease_id, h.meter_id, h.period_start): h
            for h in self.session.scalars(
                select(UsageHold).where(
                    UsageHold.property_id == self.property_id,
                    UsageHold.period_start >= self.used.first,
                )
            )
        }
        self.baselines = self._baselines()
        by_unit: dict[int, list[tuple[Utility, Any]]] = defaultdict(list)
        for (unit_id, utility), chain in self.chains.items():
            by_unit[unit_id].append((utility, chain))
        for lease in self.leases:
            start = max(lease.start_date, self.used.first)
            end = min(effective_end(lease), self.used.last)
            if start > end:
                continue
            self.spans[lease.unit_id].append((lease, start, end))
            for utility, chain in by_unit.get(lease.unit_id, []):
                found = tariffs.get(utility)
                if found is None:
                    continue
                meter = chain.meters[-1].id
                with self._guard(lease.id, f"{utility} meter {meter}", meter=meter, start=start):
                    self._meter_line(
                        lease, start=start, end=end, utility=utility, chain=chain, tariff=found
                    )
        self._common_area(tariffs)

    def _meter_line(
        self,
        lease: LeaseRow,
        *,
        start: date,
        end: date,
        utility: Utility,
        chain: Any,
        tariff: Tariff,
    ) -> None:
        got: Measured | None = None
        try:
            got = self._measure(chain, tariff, start, end)
            bounds.check_decimal(got.quantity, "usage", high=bounds.MAX_QUANTITY)
            meter_id, reason = got.meter_id, ""
            self.lease_usage[lease.id, utility] = got.quantity
        except ReadingRejectedError as exc:
            meter_id, reason = chain.meters[-1].id, str(exc)
        key = (lease.id, str(LineKind.UTILITY), meter_id, start)
        if key in self.existing or lease.id in self.prepaid:
            return
        hold = self.holds.get((lease.id, meter_id, start))
        if hold is not None and hold.kind == HoldKind.ERROR:
            hold = None  # a run's error holds do not wait for release: try the line again
        quantity = got.quantity if got is not None else None
        if hold is not None:
            if not hold.released:
                return
            quantity = hold.quantity if hold.quantity is not None else quantity
            reason = ""
        elif got is not None:
            days = Decimal((end - start).days + 1)
            check = spike_check(
                got.quantity / days,
                self.baselines.get((lease.id, meter_id)),
                multiple=Decimal(tariff.spike_multiple),
            )
            if check.held:
                reason = f"usage {got.quantity} is {check.ratio:.1f}x the baseline"
        if reason or quantity is None:
            self._hold(lease.id, meter_id, start, reason or "no usage", kind=HoldKind.USAGE,
                       quantity=quantity)  # fmt: skip
            self.draft.flags.append(f"held: lease {lease.id} meter {meter_id}: {reason}")
            return
        if tariff.kind is TariffKind.TIME_OF_USE:
            if got is None or got.zones is None or quantity != got.quantity:
                self.draft.flags.append(
                    f"not billed: lease {lease.id} meter {meter_id}: time-of-use usage is "
                    "priced per zone register; a corrected total cannot be split into zones"
                )
                return
            priced = tou_price(tariff, {z: u.usage.quantity for z, u in got.zones.items()})
            how = " + ".join(f"{z} {u.usage.quantity}" for z, u in got.zones.items())
        else:
            priced = tariff_price(tariff, quantity)
            how = got.single.usage.explanation if got and got.single else "released hold"
        single = got.single if got is not None else None
        detail: dict[str, Any] = {
            "parts": [[p.label, str(p.quantity), str(p.price / 100)] for p in priced.parts],
            "rollover": got.rollover if got else False,
            "replaced": got.replaced if got else False,
        }
        if got is not None and got.zones is not None:
            detail["zones"] = [
                [zone, point, str(u.previous), str(u.current)]
                for (zone, u), point in zip(got.zones.items(), self._points(tariff), strict=True)
            ]
        self.draft.add(
            Line(
                lease_id=lease.id,
                kind=LineKind.UTILITY,
                start=start,
                end=end,
                amount=priced.amount,
                description=f"{utility} meter {meter_id}: {how} = {quantity}",
                meter=meter_id,
                utility=str(utility),
                previous_reading=single.previous if single is not None else None,
                current_reading=single.current if single is not None else None,
                quantity=quantity,
                detail=detail,
            )
        )

    @staticmethod
    def _points(tariff: Tariff) -> list[str]:
        """The reading points a tariff bills: one register, or one per time-of-use zone."""
        if tariff.kind is TariffKind.TIME_OF_USE:
            return [z.point for z in tou_zones(tariff)]
        return [tariff.point]

    def _measure(self, chain: Any, tariff: Tariff, start: date, end: date) -> Measured:
        """A unit's usage over a span: its one register, or the sum of its zone registers."""
        if tariff.kind is not TariffKind.TIME_OF_USE:
            return Measured.of(self._usage(chain, tariff.point, start, end))
        zones = {z.name: self._usage(chain, z.point, start, end) for z in tou_zones(tariff)}
        return Measured.of_zones(zones)

    def _usage(self, chain: Any, point: str, start: date, end: date) -> MeterUsage:
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

    def _tariffs(self) -> dict[Utility, Tariff]:
        rows = self.session.scalars(
            select(Tariff)
            .where(Tariff.property_id == self.property_id, Tariff.effective_from <= self.used.first)
            .order_by(Tariff.effective_from)
        ).all()
        return {t.utility: t for t in rows}

    def _baselines(self) -> dict[tuple[int, str], Decimal]:
        """Average usage per day over the last three billed months, per lease and meter."""
        rows = self.session.execute(
            select(
                InvoiceLine.lease_id,
                InvoiceLine.meter_key,
                InvoiceLine.quantity,
                InvoiceLine.period_start,
                InvoiceLine.period_end,
            ).where(
                InvoiceLine.lease_id.in_(self.lease_q),
                InvoiceLine.kind == LineKind.UTILITY,
                InvoiceLine.period_start >= self.used.first - timedelta(days=95),
                InvoiceLine.period_start < self.used.first,
            )
        )
        total: dict[tuple[int, str], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 2)
        for lease_id, meter, q, start, end in rows:
            acc = total[lease_id, meter]
            acc[0] += Decimal(q or 0)
            acc[1] += (end - start).days + 1
        return {k: q / d for k, (q, d) in total.items() if d > 0}

    # ---- common area ----------------------------------------------------------------------

    def _common_area(self, tariffs: dict[Utility, Tariff]) -> None:
        masters = self.session.scalars(
            select(Meter).where(
                Meter.property_id == self.property_id, Meter.kind == MeterKind.MASTER
            )
        ).all()
        units = self.session.execute(
            select(Unit.id, Unit.building_id, Unit.area_m2).where(
                Unit.property_id == self.property_id
            )
        ).all()
        for master in masters:
            tariff = tariffs.get(master.utility)
            if tariff is None:
                continue
            in_building = [(uid, area) for uid, bid, area in units if bid == master.building_id]
            with self._guard(None, f"common area {master.code}"):
                self._building_common(master, tariff, in_building)

    def _building_common(
        self, master: Meter, tariff: Tariff, in_building: list[tuple[int, Decimal]]
    ) -> None:
        """One master meter's month: master minus its submeters, priced and shared."""
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
        unit_price = price(tariff.common_price)
        self.draft.utility_cost += round_half_up(Fraction(master_used) * unit_price)
        common = common_usage(master_used, subs)
        if common.negative:
            self.draft.flags.append(
                f"common area {master.code}: master {master_used} is below its submeters "
                f"{sum(subs, Decimal(0))}; check the meters (not billed)"
            )
            return
        if common.high_loss:
            self.draft.flags.append(f"common area {master.code}: losses {common.loss_ratio:.0%}")
        amount = round_half_up(Fraction(common.quantity) * unit_price)
        basis = Basis(tariff.common_basis)
        shares = self._share_common(amount, basis, in_building, master.utility)
        self.draft.operator_cost += shares.pop(OPERATOR, 0)
        spans = {lease.id: (start, end) for u in self.spans.values() for lease, start, end in u}
        submeters = str(sum(subs, Decimal(0)))
        for lease_id, share in shares.items():
            start, end = spans[lease_id]
            if (lease_id, str(LineKind.COMMON_AREA), master.code, start) in self.existing:
                continue
            self.draft.add(
                Line(
                    lease_id=lease_id,
                    kind=LineKind.COMMON_AREA,
                    start=start,
                    end=end,
                    amount=share,
                    description=(
                        f"{master.utility} common area, {basis} share of {common.quantity}"
                        f" units at {tariff.common_price}/unit"
                    ),
                    meter=master.code,
                    utility=str(master.utility),
                    quantity=common.quantity,
                    detail={
                        "basis": str(basis),
                        "master": str(master_used),
                        "submeters": submeters,
                        "building_amount_fen": amount,
                    },
                )
            )

    def _share_common(
        self, amount: int, basis: Basis, in_building: list[tuple[int, Decimal]], utility: Utility
    ) -> dict[Any, int]:
        """Shares per lease id (and OPERATOR): area and equal per unit, then by days among a
        unit's leases; occupants and usage per lease."""
        days = {lease.id: (e - s).days + 1 for u in self.spans.values() for lease, s, e in u}
        if basis in {Basis.AREA, Basis.EQUAL}:
            units = [
                UnitBasis(
                    key=str(uid),
                    area=area,
                    occupied_days=min(
                        self.used.days, sum(days[lease.id] for lease, _, _ in self.spans[uid])
                    ),
                    period_days=self.used.days,
                )
                for uid, area in in_building
            ]
            by_unit = allocate(amount, units, basis).shares
            result: dict[Any, int] = {OPERATOR: by_unit[OPERATOR]}
            for uid, _ in in_building:
                tenants = self.spans.get(uid, [])
                if tenants and by_unit[str(uid)]:
                    parts = split(by_unit[str(uid)], [days[lease.id] for lease, _, _ in tenants])
                    result.update(
                        {lease.id: part for (lease, _, _), part in zip(tenants, parts, strict=True)}
                    )
            return result
        per_lease = [
            UnitBasis(
                key=str(lease.id),
                occupants=lease.occupant_count,
                usage=self.lease_usage.get((lease.id, utility), Decimal(0)),
                occupied_days=days[lease.id],
                period_days=self.used.days,
            )
            for uid, _ in in_building
            for lease, _, _ in self.spans.get(uid, [])
        ]
        shares = allocate(amount, per_lease, basis).shares
        return {(k if k == OPERATOR else int(k)): v for k, v in shares.items()}

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
        return len(write_bills(self.session, self.property_id, bills, now=now, run_id=run.id))
