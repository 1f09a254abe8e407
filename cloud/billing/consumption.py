"""Usage from meter readings: rollover, meter replacement, and a hold on spikes.

A lower reading counts as a rollover only when the meter's register has a known digit count
and the wrapped usage is plausible (at most half the register's range); otherwise the reading is
rejected and flagged. Readings arrive as floats from the meters; `quantity()` turns them into the
exact decimal the meter displayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cloud.billing.errors import BillingError, ReadingRejectedError


def quantity(value: float | int | str | Decimal) -> Decimal:
    """The shortest decimal that round-trips the reading: 47.1 stays 47.1, not 47.1000000000001."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value) if isinstance(value, float) else str(value))


@dataclass(frozen=True, slots=True)
class Usage:
    quantity: Decimal
    rollover: bool = False
    replaced: bool = False
    explanation: str = ""


def usage(previous: Decimal, current: Decimal, *, digits: int | None = None) -> Usage:
    """usage = current - previous, or the wrap through 10**digits for a rolled-over register."""
    if current >= previous:
        return Usage(current - previous, explanation=f"{current} - {previous}")
    if digits is None:
        raise ReadingRejectedError(
            f"reading {current} is lower than the previous {previous} and the meter's digit "
            "count is unknown, so it cannot have rolled over"
        )
    span = Decimal(10) ** digits
    wrapped = span - previous + current
    if previous >= span or wrapped > span / 2:
        raise ReadingRejectedError(
            f"reading {current} after {previous} does not fit a {digits}-digit rollover"
        )
    return Usage(wrapped, rollover=True, explanation=f"{current} + {span} - {previous} (rollover)")


def replacement_usage(
    *,
    old_previous: Decimal,
    old_final: Decimal,
    new_initial: Decimal,
    new_current: Decimal,
    digits: int | None = None,
) -> Usage:
    """(old final - old previous) + (new current - new initial) across a meter swap."""
    old = usage(old_previous, old_final, digits=digits)
    new = usage(new_initial, new_current, digits=digits)
    return Usage(
        old.quantity + new.quantity,
        rollover=old.rollover or new.rollover,
        replaced=True,
        explanation=f"old meter {old.explanation}; new meter {new.explanation}",
    )


@dataclass(frozen=True, slots=True)
class SpikeCheck:
    held: bool
    ratio: Decimal | None  # usage ÷ baseline, None without a baseline


def spike_check(used: Decimal, baseline: Decimal | None, *, multiple: Decimal) -> SpikeCheck:
    """Hold usage above `multiple` * the unit's baseline for review; no baseline, no hold."""
    if multiple <= 0:
        raise BillingError("spike multiple must be positive")
    if baseline is None or baseline <= 0:
        return SpikeCheck(held=False, ratio=None)
    ratio = used / baseline
    return SpikeCheck(held=ratio > multiple, ratio=ratio)
