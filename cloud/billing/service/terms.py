"""Rows to rule inputs: a lease's terms, a late-fee policy, a tariff's prices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from types import MappingProxyType
from typing import Any, cast
from zoneinfo import ZoneInfo

from cloud.billing.bounds import (
    BASIS_POINTS,
    MAX_QUANTITY,
    MAX_SPIKE_MULTIPLE,
    check_basis_points,
    check_decimal,
    check_fen,
)
from cloud.billing.errors import BillingError
from cloud.billing.late_fees import FeeKind, FeeMode, LateFeePolicy
from cloud.billing.money import price
from cloud.billing.pricing import Priced, Tier, check_tiers, flat, tiered, time_of_use
from cloud.billing.proration import Proration, days_in_month
from cloud.billing.schedule import LeaseTerms
from cloud.models import LateFeePolicyRow, Lease, Tariff, TariffKind, Utility
from cloud.models import Proration as LeaseProration

PRORATION = {
    LeaseProration.CALENDAR_DAYS: Proration.CALENDAR,
    LeaseProration.THIRTY_DAY: Proration.THIRTY_DAY,
    LeaseProration.ANNUAL_365: Proration.ANNUAL,
}


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """The columns of a lease that billing reads, as a plain row (a run loads thousands)."""

    id: int
    unit_id: int
    primary_tenant_id: int
    occupant_count: int
    start_date: date
    end_date: date
    terminated_on: date | None
    rent_fen: int
    deposit_fen: int
    payment_cycle_months: int
    due_days_before: int
    proration: LeaseProration

    @classmethod
    def columns(cls) -> list[Any]:
        return [getattr(Lease, name) for name in cls.__slots__]


def effective_end(lease: Lease | LeaseRow) -> date:
    """The last day billed: the termination day for a lease ended early."""
    return lease.terminated_on if lease.terminated_on is not None else lease.end_date


def lease_terms(lease: Lease | LeaseRow) -> LeaseTerms | None:
    """None when the lease never ran (terminated before its start). Stored money outside the
    bounds (written before they were checked, or by hand) is a BillingError, not a bill."""
    end = effective_end(lease)
    if end < lease.start_date:
        return None
    return LeaseTerms(
        start=lease.start_date,
        end=end,
        monthly_rent=check_fen(lease.rent_fen, "rent_fen"),
        cycle_months=lease.payment_cycle_months,
        deposit=check_fen(lease.deposit_fen, "deposit_fen"),
        due_days_before=lease.due_days_before,
        proration=PRORATION[lease.proration],
    )


def policy(row: LateFeePolicyRow) -> LateFeePolicy:
    return LateFeePolicy(
        kind=FeeKind(row.kind),
        amount=row.amount_fen,
        rate=Fraction(row.rate),
        mode=FeeMode(row.mode),
        grace_days=row.grace_days,
        cap=row.cap_fen,
        min_balance=row.min_balance_fen,
    )


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month of local days."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        try:
            y, m = (int(p) for p in text.split("-"))
            date(y, m, 1)
        except ValueError:
            raise BillingError(f"period {text!r} is not YYYY-MM") from None
        if not 2000 <= y <= 2100:
            raise BillingError(f"period {text!r} is outside 2000-2100")
        return cls(y, m)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last(self) -> date:
        return date(self.year, self.month, days_in_month(self.year, self.month))

    @property
    def days(self) -> int:
        return self.last.day

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)


def utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were stored as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@lru_cache(maxsize=4096)
def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant local day `day` begins in `tz` (ANJU_TIMEZONE): readings are stored in
    UTC, billing days are local. Cached: a run asks for the same few days for every lease."""
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def day_after(day: date, tz: ZoneInfo) -> datetime:
    return day_start(day + timedelta(days=1), tz)


@dataclass(frozen=True, slots=True)
class TariffTerms:
    """A tariff row copied out of the session, read-only to its rows: a run prices a month
    with the tariff as it was loaded, whatever is written to the table meanwhile."""

    id: int | None
    utility: Utility
    effective_from: date | None
    kind: TariffKind
    tiers: tuple[Mapping[str, str], ...]
    point: str
    common_basis: str
    common_price: str
    owner_share_bp: int | None
    spike_multiple: str

    @classmethod
    def of(cls, row: Tariff) -> TariffTerms:
        """The stored values as they are: a malformed one fails where it is priced (one
        tariff held in a run), not here."""
        return cls(row.id, row.utility, row.effective_from, row.kind,
                   cast(tuple[Mapping[str, str], ...], _frozen(row.tiers)), row.point,
                   row.common_basis, row.common_price, row.owner_share_bp,
                   row.spike_multiple)  # fmt: skip


def _frozen(value: object) -> object:
    """JSON made read-only: lists become tuples, objects read-only mappings."""
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


AnyTariff = Tariff | TariffTerms  # a stored row (the API, prepaid) or a run's frozen copy


def tariff_price(tariff: AnyTariff, used: Decimal) -> Priced:
    rows = tariff.tiers
    if tariff.kind is TariffKind.FLAT:
        return flat(used, price(rows[0]["price"]))
    if tariff.kind is TariffKind.TIERED:
        key = tuple((r["lower"], r.get("upper") or "", r["price"]) for r in rows)
        return tiered(used, _tiers(key), checked=True)
    raise BillingError("time-of-use tariffs are priced per zone register; use tou_price")


def check_tariff(tariff: AnyTariff) -> None:
    """BillingError (or a parse error) unless a tariff can price: its rows, its common price and
    its spike multiple, all within the bounds. The API checks a new tariff with it; a run checks
    stored ones, which may predate the bounds."""
    if tariff.kind is TariffKind.TIME_OF_USE:
        tou_zones(tariff)
    else:
        tariff_price(tariff, Decimal(0))
    price(tariff.common_price)
    owner_share(tariff)
    check_decimal(Decimal(tariff.spike_multiple), "spike_multiple", high=MAX_SPIKE_MULTIPLE)


def owner_share(tariff: AnyTariff) -> Fraction:
    """The part of the common-area cost the owner absorbs (RUBS), checked: stored basis points
    may predate the bound. A tariff built in memory and not yet flushed has 0."""
    bp = tariff.owner_share_bp or 0  # None until flushed when not given
    return Fraction(check_basis_points(bp, "owner_share_bp"), BASIS_POINTS)


@dataclass(frozen=True, slots=True)
class Zone:
    """A time-of-use zone: the meter's own register for it (a reading point) and its price."""

    name: str
    point: str
    price: Fraction  # fen per unit


def tou_zones(tariff: AnyTariff) -> tuple[Zone, ...]:
    """The zones of a TIME_OF_USE tariff (rows {"zone", "point", "price"}), checked."""
    try:
        zones = tuple(Zone(r["zone"], r["point"], price(r["price"])) for r in tariff.tiers)
    except KeyError as exc:
        raise BillingError(f"a time-of-use zone needs zone, point and price (no {exc})") from None
    names = [z.name for z in zones]
    points = [z.point for z in zones]
    if not zones or len(set(names)) != len(names) or len(set(points)) != len(points):
        raise BillingError("time-of-use zones need distinct names and reading points")
    if any(not z.name or not z.point for z in zones):
        raise BillingError("a time-of-use zone needs a name and a reading point")
    return zones


def tou_price(tariff: AnyTariff, used: dict[str, Decimal]) -> Priced:
    """Each zone's usage (by zone name) at its price."""
    return time_of_use(used, {z.name: z.price for z in tou_zones(tariff)})


def _bound(text: str) -> Decimal:
    return check_decimal(Decimal(text), "tier bound", high=MAX_QUANTITY)


@lru_cache(maxsize=256)
def _tiers(rows: tuple[tuple[str, str, str], ...]) -> tuple[Tier, ...]:
    """Parsed once per distinct tariff: a run prices thousands of meters with the same one."""
    tiers = tuple(
        Tier(_bound(lower), _bound(upper) if upper else None, price(unit_price))
        for lower, upper, unit_price in rows
    )
    check_tiers(tiers)
    return tiers
