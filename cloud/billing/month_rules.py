"""A billing run's rules for one item, over values already loaded: no database, no clock.

`rent_lines` bills a lease's rent falling due in the month (and its deposit, and the credit of
an early termination); `utility_line` decides one lease's metered line for the usage month (bill
it, hold it for review, or leave it out with a flag); `common_area_lines` shares one master
meter's common usage among the leases of its building. The run loads what they read and writes
what they return.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import takewhile
from typing import Any

from cloud.billing.allocation import OPERATOR, Basis, UnitBasis, allocate, common_usage
from cloud.billing.consumption import spike_check
from cloud.billing.lines import Line
from cloud.billing.money import price, round_half_up, split, yuan
from cloud.billing.proration import Prorated
from cloud.billing.schedule import LeaseTerms, Period, periods, rent_for
from cloud.billing.service.meters import MeterUsage
from cloud.billing.service.terms import (
    LeaseRow,
    Month,
    TariffTerms,
    lease_terms,
    owner_share,
    tariff_price,
    tou_price,
    tou_zones,
)
from cloud.models import HoldKind, LineKind, TariffKind, Utility


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


@dataclass(frozen=True, slots=True)
class Unreadable:
    """No usage could be measured (a missing or rejected reading) on the unit's last meter."""

    meter_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PriorHold:
    """A hold already recorded for the same lease, meter and span start."""

    kind: HoldKind
    released: bool
    quantity: Decimal | None


@dataclass(frozen=True, slots=True)
class Held:
    """Usage held for review (a spike, an unreadable meter): no line until it is released."""

    meter_id: str
    reason: str
    quantity: Decimal | None


@dataclass(frozen=True, slots=True)
class Unbilled:
    """Left out with a flag for the operator, held nowhere."""

    flag: str


DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class BackRent:
    """A back-rent hold on record: rent periods start..end kept for an operator's release."""

    start: date
    end: date | None
    released: bool


@dataclass(frozen=True, slots=True)
class RentRecord:
    """What a lease has on record that its rent rule reads."""

    through: date | None  # the end of the last rent period billed
    deposited: bool
    back: tuple[BackRent, ...] = ()
    billed: frozenset[date] = frozenset()  # rent period starts billed (leases with back rent)
    after_end: tuple[tuple[date, int], ...] = ()  # rent lines (start, fen) ending after `end`
    credited: bool = False  # the credit of an early termination is billed


@dataclass(frozen=True, slots=True)
class BackRentHold:
    """Rent periods too old to bill at once: one hold for review."""

    start: date
    end: date
    periods: int
    reason: str


@dataclass(frozen=True, slots=True)
class Rent:
    lines: tuple[Line, ...]
    held: BackRentHold | None = None


def back_rent_cutoff(month: Month, max_back: int) -> date:
    """Rent periods ending before this day are back rent in `month`'s run."""
    y, m = divmod(month.year * 12 + month.month - 1 - max_back, 12)
    return date(y, m + 1, 1)


def rent_lines(lease: LeaseRow, record: RentRecord, *, month: Month, max_back: int) -> Rent:
    """The lease's rent due by the end of `month`: at most `max_back` months of it before the
    month (older periods become one back-rent hold), plus held back rent an operator released,
    and the deposit with the first period. A lease ended before the rent billed for it gets
    that rent back as one credit."""
    terms = lease_terms(lease)
    if terms is None:
        return Rent(())
    if record.through is not None and record.through > terms.end:
        return Rent(_termination_credit(lease.id, terms, record))
    due = list(_due(terms, record.through, month))
    released = [
        p
        for h in record.back
        if h.released and h.end is not None and h.start not in record.billed
        for p in _due(terms, h.start - DAY, month)
        if p.end <= h.end
    ]
    held = [(h.start, h.end or h.start) for h in record.back]
    fresh = [p for p in due if not any(a <= p.start and p.end <= b for a, b in held)]
    cutoff = back_rent_cutoff(month, max_back)
    old = [p for p in fresh if p.end < cutoff]
    bill = sorted(released + fresh[len(old) :], key=lambda p: p.start)
    hold = None
    if old:
        reason = (
            f"{len(old)} rent period(s) {old[0].start} to {old[-1].end} "
            f"({yuan(sum(p.rent for p in old))}) end more than {max_back} month(s) "
            f"before {month}; release the hold to bill them"
        )
        hold = BackRentHold(old[0].start, old[-1].end, len(old), reason)
    lines = []
    if old and old[0].deposit and not record.deposited:  # the deposit is not a month's rent
        lines.append(_deposit(lease.id, terms, old[0], bill[0].due if bill else month.first))
    for p in bill:
        explain = Prorated(p.rent, p.months).explain(terms.monthly_rent)
        lines.append(
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
        if p.deposit and not record.deposited:
            lines.append(_deposit(lease.id, terms, p, p.due))
    return Rent(tuple(lines), hold)


def _due(terms: LeaseTerms, after: date | None, month: Month) -> Iterator[Period]:
    last = month.last
    return takewhile(lambda p: p.due <= last, periods(terms, after=after, due_by=last))


def _deposit(lease_id: int, terms: LeaseTerms, first: Period, due: date) -> Line:
    return Line(lease_id=lease_id, kind=LineKind.DEPOSIT, start=first.start, end=terms.end,
                amount=first.deposit, description="Deposit", due=due)  # fmt: skip


def _termination_credit(lease_id: int, terms: LeaseTerms, record: RentRecord) -> tuple[Line, ...]:
    """Rent already billed for days after an early termination comes back as one credit."""
    if record.credited:
        return ()
    end = terms.end
    credit = sum(
        (rent_for(terms, start, end) if start <= end else 0) - amount
        for start, amount in record.after_end
    )
    if not credit:
        return ()
    return (
        Line(
            lease_id=lease_id,
            kind=LineKind.ADJUSTMENT,
            start=end + DAY,
            end=end + DAY,
            amount=credit,
            description=f"Rent credit: lease ended early on {end}",
            due=end + DAY,
        ),
    )


def points(tariff: TariffTerms) -> list[str]:
    """The reading points a tariff bills: one register, or one per time-of-use zone."""
    if tariff.kind is TariffKind.TIME_OF_USE:
        return [z.point for z in tou_zones(tariff)]
    return [tariff.point]


def utility_line(
    lease_id: int,
    *,
    start: date,
    end: date,
    utility: Utility,
    tariff: TariffTerms,
    got: Measured | Unreadable,
    hold: PriorHold | None,
    baseline: Decimal | None,
) -> Line | Held | Unbilled | None:
    """The lease's line for its meter over start..end, or why there is none: a hold waiting
    for review is None (nothing to do); a released one bills its corrected quantity; an
    unreadable meter or a spike beyond the tariff's multiple of `baseline` (usage per day) is
    held. A run's own error holds do not wait for release: the line is tried again."""
    measured = got if isinstance(got, Measured) else None
    reason = got.reason if isinstance(got, Unreadable) else ""
    if hold is not None and hold.kind == HoldKind.ERROR:
        hold = None
    quantity = measured.quantity if measured is not None else None
    if hold is not None:
        if not hold.released:
            return None
        quantity = hold.quantity if hold.quantity is not None else quantity
        reason = ""
    elif measured is not None:
        days = Decimal((end - start).days + 1)
        check = spike_check(
            measured.quantity / days, baseline, multiple=Decimal(tariff.spike_multiple)
        )
        if check.held:
            reason = f"usage {measured.quantity} is {check.ratio:.1f}x the baseline"
    if reason or quantity is None:
        return Held(got.meter_id, reason, quantity)
    if tariff.kind is TariffKind.TIME_OF_USE:
        if measured is None or measured.zones is None or quantity != measured.quantity:
            return Unbilled(
                f"not billed: lease {lease_id} meter {got.meter_id}: time-of-use usage is "
                "priced per zone register; a corrected total cannot be split into zones"
            )
        zones = measured.zones
        priced = tou_price(tariff, {z: u.usage.quantity for z, u in zones.items()})
        how = " + ".join(f"{z} {u.usage.quantity}" for z, u in zones.items())
    else:
        priced = tariff_price(tariff, quantity)
        single = measured.single if measured is not None else None
        how = single.usage.explanation if single is not None else "released hold"
    single = measured.single if measured is not None else None
    detail: dict[str, Any] = {
        "parts": [[p.label, str(p.quantity), str(p.price / 100)] for p in priced.parts],
        "rollover": measured.rollover if measured else False,
        "replaced": measured.replaced if measured else False,
    }
    if measured is not None and measured.zones is not None:
        detail["zones"] = [
            [zone, point, str(u.previous), str(u.current)]
            for (zone, u), point in zip(measured.zones.items(), points(tariff), strict=True)
        ]
    return Line(
        lease_id=lease_id,
        kind=LineKind.UTILITY,
        start=start,
        end=end,
        amount=priced.amount,
        description=f"{utility} meter {got.meter_id}: {how} = {quantity}",
        meter=got.meter_id,
        utility=str(utility),
        previous_reading=single.previous if single is not None else None,
        current_reading=single.current if single is not None else None,
        quantity=quantity,
        detail=detail,
    )


@dataclass(frozen=True, slots=True)
class Tenancy:
    """A lease's days inside the usage month, in its unit."""

    lease_id: int
    unit_id: int
    start: date
    end: date
    occupants: int

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True, slots=True)
class CommonArea:
    """One master meter's month: the leases' lines, the operator's share of the common usage
    and the cost of all the master measured (at the common price), and what to flag."""

    lines: tuple[Line, ...] = ()
    flags: tuple[str, ...] = ()
    operator_cost: int = 0
    utility_cost: int = 0


def common_area_lines(
    *,
    master: str,
    utility: Utility,
    tariff: TariffTerms,
    master_used: Decimal,
    submeters: Sequence[Decimal],
    units: Sequence[tuple[int, Decimal]],
    tenancies: Sequence[Tenancy],
    usage: Mapping[int, Decimal],
    month: Month,
) -> CommonArea:
    """Master minus its submeters over `month`, priced at the tariff's common price and shared
    by its basis among the building's `units` (id, m²) and their `tenancies`; `usage` is each
    lease's metered usage (the usage basis). A master below its submeters is flagged, not
    billed."""
    unit_price = price(tariff.common_price)
    utility_cost = round_half_up(Fraction(master_used) * unit_price)
    common = common_usage(master_used, list(submeters))
    if common.negative:
        flag = (
            f"common area {master}: master {master_used} is below its submeters "
            f"{sum(submeters, Decimal(0))}; check the meters (not billed)"
        )
        return CommonArea(flags=(flag,), utility_cost=utility_cost)
    flags = (f"common area {master}: losses {common.loss_ratio:.0%}",) if common.high_loss else ()
    amount = round_half_up(Fraction(common.quantity) * unit_price)
    basis = Basis(tariff.common_basis)
    owner = owner_share(tariff)
    shares = _shares(
        amount, basis, owner, units=units, tenancies=tenancies, usage=usage, month=month
    )
    operator = shares.pop(OPERATOR, 0)
    spans = {t.lease_id: t for t in tenancies}
    detail = {
        "basis": str(basis),
        "master": str(master_used),
        "submeters": str(sum(submeters, Decimal(0))),
        "building_amount_fen": amount,
    }
    if owner:
        detail["owner_share_bp"] = tariff.owner_share_bp
    lines = tuple(
        Line(
            lease_id=lease_id,
            kind=LineKind.COMMON_AREA,
            start=spans[lease_id].start,
            end=spans[lease_id].end,
            amount=share,
            description=(
                f"{utility} common area, {basis} share of {common.quantity}"
                f" units at {tariff.common_price}/unit"
            ),
            meter=master,
            utility=str(utility),
            quantity=common.quantity,
            detail=dict(detail),
        )
        for lease_id, share in shares.items()
    )
    return CommonArea(lines, flags, operator, utility_cost)


def _shares(
    amount: int,
    basis: Basis,
    owner: Fraction,
    *,
    units: Sequence[tuple[int, Decimal]],
    tenancies: Sequence[Tenancy],
    usage: Mapping[int, Decimal],
    month: Month,
) -> dict[Any, int]:
    """Shares per lease id (and OPERATOR): area and equal per unit, then by days among a
    unit's leases; occupants and usage per lease. The `owner` fraction (RUBS) goes to the
    operator before the basis shares the rest."""
    by_unit: dict[int, list[Tenancy]] = {}
    for t in tenancies:
        by_unit.setdefault(t.unit_id, []).append(t)
    if basis in {Basis.AREA, Basis.EQUAL}:
        unit_bases = [
            UnitBasis(
                key=str(uid),
                area=area,
                occupied_days=min(month.days, sum(t.days for t in by_unit.get(uid, []))),
                period_days=month.days,
            )
            for uid, area in units
        ]
        per_unit = allocate(amount, unit_bases, basis, owner_fraction=owner).shares
        result: dict[Any, int] = {OPERATOR: per_unit[OPERATOR]}
        for uid, _ in units:
            tenants = by_unit.get(uid, [])
            if tenants and per_unit[str(uid)]:
                parts = split(per_unit[str(uid)], [t.days for t in tenants])
                result.update({t.lease_id: part for t, part in zip(tenants, parts, strict=True)})
        return result
    per_lease = [
        UnitBasis(
            key=str(t.lease_id),
            occupants=t.occupants,
            usage=usage.get(t.lease_id, Decimal(0)),
            occupied_days=t.days,
            period_days=month.days,
        )
        for uid, _ in units
        for t in by_unit.get(uid, [])
    ]
    shares = allocate(amount, per_lease, basis, owner_fraction=owner).shares
    return {(k if k == OPERATOR else int(k)): v for k, v in shares.items()}
