"""A billing run's rules for one item, over values already loaded: no database, no clock.

`utility_line` decides one lease's metered line for the usage month (bill it, hold it for
review, or leave it out with a flag); the run loads what it reads and writes what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from cloud.billing.consumption import spike_check
from cloud.billing.lines import Line
from cloud.billing.service.meters import MeterUsage
from cloud.billing.service.terms import tariff_price, tou_price, tou_zones
from cloud.models import HoldKind, LineKind, Tariff, TariffKind, Utility


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


def points(tariff: Tariff) -> list[str]:
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
    tariff: Tariff,
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
