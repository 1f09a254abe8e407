"""What one property's billing run reads, loaded up front in a handful of set-based queries
and frozen: the rules then run over it without going back to the database, and a tariff or
reading written meanwhile does not change the month being billed.

Tariffs are copied out of the session (TariffTerms); readings are loaded at the month's two
boundaries for every meter of the property, and at a boundary inside the month (a lease that
starts or ends mid-month) for the meters of that lease's unit, one query per boundary.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from cloud.billing.month_rules import BackRent, PriorHold, RentRecord, points
from cloud.billing.service.meters import (
    Boundary,
    BoundaryReadings,
    UnitMeters,
    latest_readings,
    unit_meters,
)
from cloud.billing.service.terms import (
    LeaseRow,
    Month,
    TariffTerms,
    check_tariff,
    day_after,
    day_start,
    effective_end,
)
from cloud.models import (
    HoldKind,
    InvoiceLine,
    Lease,
    LeaseStatus,
    LineKind,
    Meter,
    MeterKind,
    PrepaidAccount,
    Tariff,
    Unit,
    UsageHold,
    Utility,
)

BILLABLE = (LeaseStatus.SIGNED, LeaseStatus.ACTIVE, LeaseStatus.ENDED, LeaseStatus.TERMINATED)
DAY = timedelta(days=1)
Key = tuple[int, str, str, date]  # lease, kind, meter, period start


@dataclass(frozen=True, slots=True)
class MasterMeter:
    code: str
    utility: Utility
    building_id: int | None
    digits: int | None


@dataclass(frozen=True, slots=True)
class MonthSnapshot:
    """One property's month as its run reads it. `month` bills rent; `used` (the month
    before) bills utilities and common area. Everything metered is empty when the property
    has no tariff in force."""

    property_id: int
    month: Month
    used: Month
    tz: ZoneInfo  # the zone of its local days (ANJU_TIMEZONE)
    leases: tuple[LeaseRow, ...]  # billable and overlapping the two months, by id
    existing: frozenset[Key]  # utility and common-area lines already billed
    rent: Mapping[int, RentRecord]  # by lease
    tariffs: Mapping[Utility, TariffTerms]  # in force on the usage month's first day
    prepaid: frozenset[int]  # leases whose utilities are deducted from a prepaid balance
    chains: Mapping[tuple[int, Utility], UnitMeters]  # by unit and utility
    holds: Mapping[tuple[int, str, date], PriorHold]  # by lease, meter, span start
    baselines: Mapping[tuple[int, str], Decimal]  # usage per day, by lease and meter
    masters: tuple[MasterMeter, ...]
    units: tuple[tuple[int, int, Decimal], ...]  # id, building, m²
    readings: BoundaryReadings  # at the usage month's local-day boundaries in the run's zone


def load_month(session: Session, property_id: int, month: Month, tz: ZoneInfo) -> MonthSnapshot:
    """`tz` (ANJU_TIMEZONE) places the local days' boundaries the readings are taken at."""
    used = month.previous()
    leases = tuple(
        LeaseRow(*row)
        for row in session.execute(
            select(*LeaseRow.columns())
            .where(
                Lease.property_id == property_id,
                Lease.status.in_(BILLABLE),
                Lease.start_date <= month.last,
                Lease.end_date >= used.first,
            )
            .order_by(Lease.id)
        )
    )
    lease_q = select(Lease.id).where(Lease.property_id == property_id)
    tariffs = {
        t.utility: TariffTerms.of(t)
        for t in session.scalars(
            select(Tariff)
            .where(Tariff.property_id == property_id, Tariff.effective_from <= used.first)
            .order_by(Tariff.effective_from)
        )
    }
    metered = bool(tariffs)
    chains = unit_meters(session, property_id) if metered else {}
    masters = _masters(session, property_id) if metered else ()
    wanted = _boundaries(used, tz, tariffs=tariffs, leases=leases, chains=chains, masters=masters)
    return MonthSnapshot(
        property_id=property_id,
        month=month,
        used=used,
        tz=tz,
        leases=leases,
        existing=_existing(session, lease_q, used),
        rent=MappingProxyType(_rent(session, property_id, lease_q, leases)),
        tariffs=MappingProxyType(tariffs),
        prepaid=frozenset(
            session.scalars(
                select(PrepaidAccount.lease_id).where(PrepaidAccount.lease_id.in_(lease_q))
            )
        )
        if metered
        else frozenset(),
        chains=MappingProxyType(chains),
        holds=MappingProxyType(_holds(session, property_id, used) if metered else {}),
        baselines=MappingProxyType(_baselines(session, lease_q, used) if metered else {}),
        masters=masters,
        units=tuple(
            (uid, bid, area)
            for uid, bid, area in session.execute(
                select(Unit.id, Unit.building_id, Unit.area_m2).where(
                    Unit.property_id == property_id
                )
            )
        )
        if metered
        else (),
        readings=_readings(session, property_id, wanted),
    )


def _boundaries(
    used: Month,
    tz: ZoneInfo,
    *,
    tariffs: Mapping[Utility, TariffTerms],
    leases: tuple[LeaseRow, ...],
    chains: Mapping[tuple[int, Utility], UnitMeters],
    masters: tuple[MasterMeter, ...],
) -> dict[Boundary, set[str] | None]:
    """Which readings the run will ask for: each tariff's points at the month's two boundaries
    (None: every meter), and the boundaries inside it for the meters of the leases there."""
    t0, t1 = day_start(used.first, tz), day_after(used.last, tz)
    read = {u: _points(t) for u, t in tariffs.items()}
    read = {u: ps for u, ps in read.items() if ps}
    wanted: dict[Boundary, set[str] | None] = {(p, t): None for ps in read.values()
                                                 for p in ps for t in (t0, t1)}  # fmt: skip
    for m in masters:  # a time-of-use master is read on the tariff's own point
        if m.utility in read:
            for t in (t0, t1):
                _ask(wanted, (tariffs[m.utility].point, t), [m.code])
    by_unit: dict[int, list[tuple[Utility, UnitMeters]]] = defaultdict(list)
    for (unit_id, utility), chain in chains.items():
        by_unit[unit_id].append((utility, chain))
    for lease in leases:
        start, end = max(lease.start_date, used.first), min(effective_end(lease), used.last)
        edges = {day_start(start, tz), day_after(end, tz)} - {t0, t1}
        if start > end or not edges:
            continue
        for utility, chain in by_unit.get(lease.unit_id, []):
            for p in read.get(utility, ()):
                for t in edges:
                    _ask(wanted, (p, t), [m.id for m in chain.meters])
    return wanted


def _points(tariff: TariffTerms) -> list[str]:
    """The points a tariff reads, none for one that cannot price (the run holds it)."""
    try:
        check_tariff(tariff)
    except Exception:  # noqa: BLE001 - any stored value no check foresaw
        return []
    return points(tariff)


def _ask(wanted: dict[Boundary, set[str] | None], at: Boundary, codes: list[str]) -> None:
    """Add meters to a boundary's query; one asked for every meter has them already."""
    if (known := wanted.setdefault(at, set())) is not None:
        known.update(codes)


def _readings(
    session: Session, property_id: int, wanted: dict[Boundary, set[str] | None]
) -> BoundaryReadings:
    """One query per boundary."""
    values = {
        b: MappingProxyType(latest_readings(session, property_id, *b, codes))
        for b, codes in wanted.items()
        if codes is None or codes
    }
    return BoundaryReadings(
        values=MappingProxyType(values),
        whole=frozenset(b for b, codes in wanted.items() if codes is None),
        asked=frozenset((b, code) for b, codes in wanted.items() for code in codes or ()),
    )


def _existing(session: Session, lease_q: Select[Any], used: Month) -> frozenset[Key]:
    rows = session.execute(
        select(
            InvoiceLine.lease_id, InvoiceLine.kind, InvoiceLine.meter_key, InvoiceLine.period_start
        ).where(
            InvoiceLine.lease_id.in_(lease_q),
            InvoiceLine.period_start >= used.first,
            InvoiceLine.kind.in_([LineKind.UTILITY, LineKind.COMMON_AREA]),
        )
    )
    return frozenset((lid, str(kind), meter, start) for lid, kind, meter, start in rows)


def _rent(
    session: Session, property_id: int, lease_q: Select[Any], leases: tuple[LeaseRow, ...]
) -> dict[int, RentRecord]:
    through: dict[int, date] = dict(
        session.execute(
            select(InvoiceLine.lease_id, func.max(InvoiceLine.period_end))
            .where(InvoiceLine.lease_id.in_(lease_q), InvoiceLine.kind == LineKind.RENT)
            .group_by(InvoiceLine.lease_id)
        ).all()
    )
    deposited = set(
        session.scalars(
            select(InvoiceLine.lease_id).where(
                InvoiceLine.lease_id.in_(lease_q), InvoiceLine.kind == LineKind.DEPOSIT
            )
        )
    )
    back: dict[int, list[BackRent]] = defaultdict(list)
    for hold in session.scalars(
        select(UsageHold).where(
            UsageHold.property_id == property_id, UsageHold.kind == HoldKind.BACK_RENT
        )
    ):
        back[hold.lease_id].append(BackRent(hold.period_start, hold.period_end, hold.released))
    billed: dict[int, set[date]] = defaultdict(set)
    for lease_id, start in session.execute(
        select(InvoiceLine.lease_id, InvoiceLine.period_start).where(
            InvoiceLine.lease_id.in_(list(back)), InvoiceLine.kind == LineKind.RENT
        )
    ):
        billed[lease_id].add(start)
    records = {}
    for lease in leases:
        after_end: tuple[tuple[date, int], ...] = ()
        credited = False
        if (t := through.get(lease.id)) is not None and t > effective_end(lease):
            after_end, credited = _after_end(session, lease.id, effective_end(lease))
        records[lease.id] = RentRecord(
            through=t,
            deposited=lease.id in deposited,
            back=tuple(back.get(lease.id, ())),
            billed=frozenset(billed.get(lease.id, ())),
            after_end=after_end,
            credited=credited,
        )
    return records


def _after_end(
    session: Session, lease_id: int, end: date
) -> tuple[tuple[tuple[date, int], ...], bool]:
    """What the credit of a lease ended before the rent billed for it reads: that rent, and
    whether the credit is billed already (a few leases a month: one query each)."""
    credited = session.scalar(
        select(InvoiceLine.id).where(
            InvoiceLine.lease_id == lease_id,
            InvoiceLine.kind == LineKind.ADJUSTMENT,
            InvoiceLine.period_start == end + DAY,
        )
    )
    rows = session.execute(
        select(InvoiceLine.period_start, InvoiceLine.amount_fen).where(
            InvoiceLine.lease_id == lease_id,
            InvoiceLine.kind == LineKind.RENT,
            InvoiceLine.period_end > end,
        )
    )
    return tuple((start, amount) for start, amount in rows), credited is not None


def _holds(
    session: Session, property_id: int, used: Month
) -> dict[tuple[int, str, date], PriorHold]:
    return {
        (h.lease_id, h.meter_id, h.period_start): PriorHold(
            HoldKind(h.kind), h.released, h.quantity
        )
        for h in session.scalars(
            select(UsageHold).where(
                UsageHold.property_id == property_id, UsageHold.period_start >= used.first
            )
        )
    }


def _baselines(
    session: Session, lease_q: Select[Any], used: Month
) -> dict[tuple[int, str], Decimal]:
    """Average usage per day over the last three billed months, per lease and meter."""
    rows = session.execute(
        select(
            InvoiceLine.lease_id,
            InvoiceLine.meter_key,
            InvoiceLine.quantity,
            InvoiceLine.period_start,
            InvoiceLine.period_end,
        ).where(
            InvoiceLine.lease_id.in_(lease_q),
            InvoiceLine.kind == LineKind.UTILITY,
            InvoiceLine.period_start >= used.first - timedelta(days=95),
            InvoiceLine.period_start < used.first,
        )
    )
    total: dict[tuple[int, str], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 2)
    for lease_id, meter, q, start, end in rows:
        acc = total[lease_id, meter]
        acc[0] += Decimal(q or 0)
        acc[1] += (end - start).days + 1
    return {k: q / d for k, (q, d) in total.items() if d > 0}


def _masters(session: Session, property_id: int) -> tuple[MasterMeter, ...]:
    return tuple(
        MasterMeter(code, utility, building_id, digits)
        for code, utility, building_id, digits in session.execute(
            select(Meter.code, Meter.utility, Meter.building_id, Meter.digits)
            .where(Meter.property_id == property_id, Meter.kind == MeterKind.MASTER)
            .order_by(Meter.id)
        )
    )
