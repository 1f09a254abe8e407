"""The read planner: a device's points merged into the fewest register reads.

Per function code, points sorted by address are taken greedily into one read while the read stays
within `max_registers` and no run of unused registers inside it exceeds `max_gap`. Scanning left to
right and closing a read only when the next point cannot join is optimal for this problem (any
plan can be shifted to the greedy one without adding reads), and it is deterministic: the same
points give the same reads, whatever order the profile lists them in.
"""

from __future__ import annotations

import functools
import itertools
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from protocols.modbus.decode import decode_point
from protocols.modbus.errors import MeterError, MeterExceptionCodeError
from protocols.modbus.profile import (
    DEFAULT_MAX_GAP,
    MAX_READ_REGISTERS,
    DataType,
    FunctionCode,
    Order,
    Point,
    Profile,
)

_REGISTERS = {n: struct.Struct(f">{n}H") for n in range(1, MAX_READ_REGISTERS + 1)}
_BIG_ENDIAN = {
    DataType.U16: struct.Struct(">H"),
    DataType.I16: struct.Struct(">h"),
    DataType.U32: struct.Struct(">I"),
    DataType.I32: struct.Struct(">i"),
    DataType.F32: struct.Struct(">f"),
    DataType.F64: struct.Struct(">d"),
}


def _fast_format(point: Point) -> struct.Struct | None:
    """Big-endian numbers decode straight from the reply's bytes; the rest take decode_point."""
    if point.byte_order is Order.BIG and point.word_order is Order.BIG:
        return _BIG_ENDIAN.get(point.type)
    return None


@functools.cache
def _decoders(
    base: int, points: tuple[Point, ...]
) -> tuple[tuple[Point, struct.Struct | None, int, int], ...]:
    """One tuple for every meter of a profile: the reads of 200 meters differ in unit id only."""
    return tuple((p, _fast_format(p), p.address - base, p.end - base) for p in points)


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One FC03/FC04 transaction to one device and the points it carries."""

    unit_id: int
    function: FunctionCode
    address: int
    count: int
    points: tuple[Point, ...]
    # Per point: (point, big-endian format or None, first word, end word), worked out once
    # here instead of on every reply (the poll loop decodes thousands of values a second).
    _decoders: tuple[tuple[Point, struct.Struct | None, int, int], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_decoders", _decoders(self.address, self.points))

    @property
    def end(self) -> int:
        return self.address + self.count

    def values(self, words: Sequence[int]) -> list[tuple[Point, float | str]]:
        """Each point of this read with its value, from the words the device returned."""
        if len(words) != self.count:
            raise ValueError(f"expected {self.count} registers, got {len(words)}")
        raw = _REGISTERS[self.count].pack(*words)  # one pack for the whole reply
        out: list[tuple[Point, float | str]] = []
        for p, fast, start, end in self._decoders:
            if fast is None:
                out.append((p, decode_point(p, words[start:end])))
            else:
                out.append((p, float(fast.unpack_from(raw, 2 * start)[0]) * p.scale))
        return out

    def decode(self, words: Sequence[int]) -> dict[str, float | str]:
        return {point.name: value for point, value in self.values(words)}


def plan_reads(
    unit_id: int,
    points: Iterable[Point],
    *,
    max_registers: int = MAX_READ_REGISTERS,
    max_gap: int = DEFAULT_MAX_GAP,
) -> tuple[ReadRequest, ...]:
    """Fewest reads covering every point once, for one device. Ordered by (function, address)."""
    if not 1 <= max_registers <= MAX_READ_REGISTERS:
        raise ValueError(f"max_registers must be 1..{MAX_READ_REGISTERS}")
    if max_gap < 0:
        raise ValueError("max_gap must not be negative")
    by_function: dict[FunctionCode, list[Point]] = {}
    for point in points:
        if point.words > max_registers:
            raise ValueError(f"point {point.name!r} needs more than {max_registers} registers")
        by_function.setdefault(point.function, []).append(point)
    reads: list[ReadRequest] = []
    for function in sorted(by_function):
        ordered = sorted(by_function[function], key=lambda p: (p.address, p.end, p.name))
        group: list[Point] = []
        start = end = 0
        for point in ordered:
            if group and (
                max(end, point.end) - start <= max_registers and point.address - end <= max_gap
            ):
                group.append(point)
                end = max(end, point.end)
                continue
            if group:
                reads.append(ReadRequest(unit_id, function, start, end - start, tuple(group)))
            group, start, end = [point], point.address, point.end
        reads.append(ReadRequest(unit_id, function, start, end - start, tuple(group)))
    return tuple(reads)


def plan_profile(
    unit_id: int,
    profile: Profile,
    *,
    max_registers: int | None = None,
    max_gap: int | None = None,
) -> tuple[ReadRequest, ...]:
    """Plan with the profile's limits, narrowed further by a device's own settings if given."""
    return plan_reads(
        unit_id,
        profile.points,
        max_registers=min(profile.max_registers, max_registers or MAX_READ_REGISTERS),
        max_gap=profile.max_gap if max_gap is None else min(profile.max_gap, max_gap),
    )


def plan_bus(
    devices: Mapping[int, Iterable[Point]],
    *,
    max_registers: int = MAX_READ_REGISTERS,
    max_gap: int = DEFAULT_MAX_GAP,
) -> tuple[ReadRequest, ...]:
    """Every device's reads, devices in unit-id order; a read never spans two devices."""
    return tuple(
        read
        for unit_id in sorted(devices)
        for read in plan_reads(
            unit_id, devices[unit_id], max_registers=max_registers, max_gap=max_gap
        )
    )


def one_per_point(unit_id: int, points: Iterable[Point]) -> tuple[ReadRequest, ...]:
    """The naive plan other gateways use: one read per point (the benchmark's baseline)."""
    return tuple(
        ReadRequest(unit_id, p.function, p.address, p.words, (p,))
        for p in sorted(points, key=lambda p: (p.function, p.address, p.name))
    )


# Exception codes a meter gives for a span it will not read whole (unmapped registers inside it,
# or more registers than it serves at once): the read is split, not retried.
REFUSED_SPAN_CODES = frozenset({2, 3})  # illegal data address, illegal data value


def refused_span(error: MeterError, request: ReadRequest) -> bool:
    """A merged read the meter will not serve whole: worth splitting rather than retrying."""
    return (
        isinstance(error, MeterExceptionCodeError)
        and error.code in REFUSED_SPAN_CODES
        and len(request.points) > 1
    )


def split_read(request: ReadRequest) -> tuple[ReadRequest, ReadRequest]:
    """Two reads covering the points of a read a meter refused.

    The cut goes at the widest hole between points (a meter that refuses unmapped registers
    is then asked only for mapped ones), the hole nearest the middle on a tie, and between two
    adjacent points nearest the middle when there is no hole (a meter that serves fewer
    registers at once gets ever shorter reads). Needs at least two points.
    """
    points = sorted(request.points, key=lambda p: (p.address, p.end, p.name))
    if len(points) < 2:
        raise ValueError("a read of one point cannot be split")
    middle = request.address + request.count / 2
    ends = list(itertools.accumulate((p.end for p in points), max))  # end of points[: i + 1]
    cut = min(
        range(1, len(points)),
        key=lambda i: (ends[i - 1] - points[i].address, abs(points[i].address - middle)),
    )
    return _read_of(request, points[:cut]), _read_of(request, points[cut:])


def _read_of(request: ReadRequest, points: list[Point]) -> ReadRequest:
    start, end = points[0].address, max(p.end for p in points)
    return ReadRequest(request.unit_id, request.function, start, end - start, tuple(points))
