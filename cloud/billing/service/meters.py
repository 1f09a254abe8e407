"""Meter readings at billing boundaries, and a unit's usage over a span (swaps included).

Meters are named by their code here (unique in the organisation, so in a property); a reading
counts only when the meter's bound gateway sent it (cloud/meter_bindings.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from cloud.billing.consumption import Usage, quantity, replacement_usage, usage
from cloud.billing.errors import ReadingRejectedError
from cloud.billing.service.terms import day_after, day_start, utc
from cloud.meter_bindings import readings_join
from cloud.models import Meter, MeterSwap, Reading, Utility

# A meter silent for longer than this before a boundary has no reading there (flagged).
LOOKBACK = timedelta(days=62)


class MissingReadingError(ReadingRejectedError):
    pass


class Readings(Protocol):
    """Where span_usage finds the latest good reading of a point before an instant."""

    def at(self, meter_id: str, point: str, at: datetime) -> Decimal: ...


class ReadingBook:
    """Readings asked for one meter and boundary at a time, from the database, cached (a meter's
    daily usage). A billing run reads a BoundaryReadings loaded up front instead."""

    def __init__(self, session: Session, property_id: int) -> None:
        self._session = session
        self._property_id = property_id
        self._cache: dict[tuple[str, datetime], dict[str, Decimal]] = {}

    def at(self, meter_id: str, point: str, at: datetime) -> Decimal:
        known = self._cache.setdefault((point, at), {})
        if meter_id not in known:
            known.update(latest_readings(self._session, self._property_id, point, at, [meter_id]))
        value = known.get(meter_id)
        if value is None:
            raise MissingReadingError(f"meter {meter_id} has no {point} reading before {at}")
        return value


Boundary = tuple[str, datetime]  # a reading point and the instant a reading is wanted before


@dataclass(frozen=True, slots=True)
class BoundaryReadings:
    """The readings a run reads, loaded before it prices anything: by boundary, the meters'
    latest good values. `whole` boundaries hold every meter of the property; others the meters
    in `asked`. A meter neither holds is a fault of the loader, not a missing reading."""

    values: Mapping[Boundary, Mapping[str, Decimal]]
    whole: frozenset[Boundary]
    asked: frozenset[tuple[Boundary, str]]

    def at(self, meter_id: str, point: str, at: datetime) -> Decimal:
        value = self.values.get((point, at), {}).get(meter_id)
        if value is not None:
            return value
        if (point, at) not in self.whole and ((point, at), meter_id) not in self.asked:
            raise LookupError(f"meter {meter_id} {point} before {at} is not in the snapshot")
        raise MissingReadingError(f"meter {meter_id} has no {point} reading before {at}")


def latest_readings(
    session: Session, property_id: int, point: str, at: datetime, codes: Collection[str] | None
) -> dict[str, Decimal]:
    """Latest good reading of `point` before `at` (within LOOKBACK) of the property's meters
    (or those with `codes`), from their bound gateways only."""
    meters = Meter.property_id == property_id
    if codes is not None:
        meters &= Meter.code.in_(list(codes))
    last = (
        select(Reading.gateway_id, Reading.meter_id, func.max(Reading.ts).label("ts"))
        .join(Meter, readings_join())
        .where(
            meters,
            Reading.point == point,
            Reading.quality == "good",
            Reading.value.is_not(None),  # a text reading is no quantity
            Reading.ts < at,
            Reading.ts >= at - LOOKBACK,
        )
        .group_by(Reading.gateway_id, Reading.meter_id)
        .subquery()
    )
    rows = session.execute(
        select(Reading.meter_id, Reading.value).join(
            last,
            and_(
                Reading.gateway_id == last.c.gateway_id,
                Reading.meter_id == last.c.meter_id,
                Reading.ts == last.c.ts,
                Reading.point == point,
            ),
        )
    )
    return {meter_id: quantity(value) for meter_id, value in rows if value is not None}


@dataclass(frozen=True, slots=True)
class MeterUsage:
    meter_id: str  # the meter billed (the new one across a swap)
    previous: Decimal
    current: Decimal
    usage: Usage


@dataclass(frozen=True, slots=True)
class SubMeter:
    """What billing needs of a submeter (a plain row: a run loads every meter of a property)."""

    id: str  # its code
    unit_id: int
    utility: Utility
    digits: int | None


@dataclass(frozen=True, slots=True)
class Swap:
    """A recorded meter swap, as a run reads it (meters by code)."""

    old: str
    new: str
    swapped_at: datetime  # UTC
    old_final: Decimal
    new_initial: Decimal


@dataclass(frozen=True, slots=True)
class UnitMeters:
    """A unit's submeters of one utility, in installation order, with the swaps between them."""

    meters: tuple[SubMeter, ...]
    swaps: Mapping[str, Swap]  # by old meter code


def unit_meters(session: Session, property_id: int) -> dict[tuple[int, Utility], UnitMeters]:
    rows = session.execute(
        select(Meter.id, Meter.code, Meter.unit_id, Meter.utility, Meter.digits)
        .where(Meter.property_id == property_id, Meter.unit_id.is_not(None))
        .order_by(Meter.code)
    ).all()
    codes = {pk: code for pk, code, *_ in rows}
    meters = [
        SubMeter(code, unit_id, utility, digits)
        for _, code, unit_id, utility, digits in rows
        if unit_id is not None
    ]
    swaps = (
        {
            codes[s.old_meter_id]: _swap(s, codes)
            for s in session.scalars(
                select(MeterSwap).where(MeterSwap.old_meter_id.in_(list(codes)))
            )
        }
        if codes
        else {}
    )
    new_ids = {s.new for s in swaps.values()}
    by_unit: dict[tuple[int, Utility], list[SubMeter]] = {}
    for m in meters:
        by_unit.setdefault((m.unit_id, m.utility), []).append(m)
    result = {}
    for key, group in by_unit.items():
        # order the chain: start from the meter no swap installed, follow the swaps
        by_id = {m.id: m for m in group}
        first = [m for m in group if m.id not in new_ids] or group
        chain = [first[0]]
        while (s := swaps.get(chain[-1].id)) is not None and s.new in by_id:
            chain.append(by_id[s.new])
        own = {m.id: swaps[m.id] for m in chain if m.id in swaps}
        result[key] = UnitMeters(tuple(chain), MappingProxyType(own))
    return result


def _swap(row: MeterSwap, codes: Mapping[int, str]) -> Swap:
    return Swap(codes[row.old_meter_id], codes.get(row.new_meter_id, ""), utc(row.swapped_at),
                row.old_final, row.new_initial)  # fmt: skip


def span_usage(
    book: Readings, unit: UnitMeters, point: str, start: date, end: date, *, tz: ZoneInfo
) -> MeterUsage:
    """Usage of the unit's meter chain over local days start..end (inclusive) in `tz`."""
    t0, t1 = day_start(start, tz), day_after(end, tz)
    active = 0
    for i, m in enumerate(unit.meters):
        swap = unit.swaps.get(m.id)
        if swap is not None and swap.swapped_at <= t0:
            active = i + 1
    meter = unit.meters[min(active, len(unit.meters) - 1)]
    swap = unit.swaps.get(meter.id)
    if swap is not None and t0 < swap.swapped_at < t1 and active + 1 < len(unit.meters):
        new = unit.meters[active + 1]
        previous = book.at(meter.id, point, t0)
        current = book.at(new.id, point, t1)
        used = replacement_usage(
            old_previous=previous,
            old_final=swap.old_final,
            new_initial=swap.new_initial,
            new_current=current,
            digits=new.digits,
        )
        return MeterUsage(new.id, previous, current, used)
    previous = book.at(meter.id, point, t0)
    current = book.at(meter.id, point, t1)
    return MeterUsage(meter.id, previous, current, usage(previous, current, digits=meter.digits))


def sum_usage(values: Sequence[MeterUsage]) -> Decimal:
    return sum((v.usage.quantity for v in values), Decimal(0))
