"""The read planner: exact plans for known meters, and properties over random register maps."""

from __future__ import annotations

import itertools
import random
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.meters.profiles import load_profile
from protocols.modbus.errors import MeterExceptionCodeError, MeterTimeoutError
from protocols.modbus.plan import (
    ReadRequest,
    one_per_point,
    plan_bus,
    plan_profile,
    plan_reads,
    refused_span,
    split_read,
)
from protocols.modbus.profile import FunctionCode, Point


def test_sdm630_eighteen_points_take_two_reads() -> None:
    profile = load_profile("eastron-sdm630")
    assert len(profile.points) == 18
    reads = plan_profile(1, profile)
    assert [(r.function, r.address, r.end - 1) for r in reads] == [
        (FunctionCode.INPUT, 0x0000, 0x004B),
        (FunctionCode.INPUT, 0x0156, 0x0159),
    ]
    assert len(one_per_point(1, profile.points)) / len(reads) == 9


def test_device_limits_narrow_the_profile() -> None:
    profile = load_profile("eastron-sdm630")
    reads = plan_profile(1, profile, max_registers=40)
    assert all(r.count <= 40 for r in reads)
    assert len(reads) == 3
    tight = plan_profile(1, profile, max_gap=0)
    assert max(r.count for r in tight) == 18  # 0x0000-0x0011: the contiguous phase block


# ---- properties ---------------------------------------------------------------------------


@st.composite
def register_maps(draw: st.DrawFn) -> list[Point]:
    """Non-overlapping points over FC03/FC04 with widths 1, 2 and 4 and random holes."""
    points: list[Point] = []
    for function in (3, 4):
        address = draw(st.integers(0, 200))
        for i in range(draw(st.integers(0, 25))):
            width = draw(st.sampled_from([1, 2, 4]))
            points.append(
                Point.model_validate(
                    {
                        "name": f"f{function}_{i}",
                        "kind": "k",
                        "function": function,
                        "address": address,
                        "type": {1: "u16", 2: "f32", 4: "f64"}[width],
                    }
                )
            )
            address += width + draw(st.sampled_from([0, 0, 0, 1, 3, 10, 40, 130]))
    return points


def check_plan(points: list[Point], reads: tuple[ReadRequest, ...], limit: int, gap: int) -> None:
    covered = [p.name for r in reads for p in r.points]
    assert sorted(covered) == sorted(p.name for p in points)  # each point exactly once
    assert len(reads) <= len(points)
    for read in reads:
        assert 1 <= read.count <= limit
        assert {p.function for p in read.points} == {read.function}
        assert all(read.address <= p.address and p.end <= read.end for p in read.points)
        ordered = sorted(read.points, key=lambda p: p.address)
        assert ordered[0].address == read.address
        assert max(p.end for p in ordered) == read.end
        for a, b in itertools.pairwise(ordered):
            assert b.address - a.end <= gap


def fewest_reads(points: list[Point], limit: int, gap: int) -> int:
    """Brute force: the best split of each function's address-sorted points into runs."""
    total = 0
    for function in {p.function for p in points}:
        ps = sorted((p for p in points if p.function is function), key=lambda p: p.address)

        @cache
        def best(i: int, ps: tuple[Point, ...] = tuple(ps)) -> int:
            if i == len(ps):
                return 0
            options = []
            for j in range(i, len(ps)):
                if j > i and ps[j].address - ps[j - 1].end > gap:
                    break
                if ps[j].end - ps[i].address > limit:
                    break
                options.append(1 + best(j + 1))
            return min(options)

        total += best(0)
    return total


limits = st.integers(4, 125)
gaps = st.integers(0, 125)


@settings(max_examples=150, deadline=None)
@given(register_maps(), limits, gaps)
def test_plan_covers_each_point_once_within_limits(
    points: list[Point], limit: int, gap: int
) -> None:
    check_plan(points, plan_reads(1, points, max_registers=limit, max_gap=gap), limit, gap)


@settings(max_examples=120, deadline=None)
@given(register_maps(), limits, gaps)
def test_plan_is_minimal(points: list[Point], limit: int, gap: int) -> None:
    reads = plan_reads(1, points, max_registers=limit, max_gap=gap)
    assert len(reads) == fewest_reads(points, limit, gap)


@settings(max_examples=60, deadline=None)
@given(register_maps(), limits, gaps, st.randoms(use_true_random=False))
def test_plan_is_deterministic(
    points: list[Point], limit: int, gap: int, rnd: random.Random
) -> None:
    shuffled = list(points)
    rnd.shuffle(shuffled)
    assert plan_reads(1, shuffled, max_registers=limit, max_gap=gap) == plan_reads(
        1, points, max_registers=limit, max_gap=gap
    )


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.integers(1, 247), register_maps(), max_size=4), limits, gaps)
def test_bus_plan_never_merges_across_devices(
    devices: dict[int, list[Point]], limit: int, gap: int
) -> None:
    reads = plan_bus(devices, max_registers=limit, max_gap=gap)
    for unit_id, points in devices.items():
        mine = tuple(r for r in reads if r.unit_id == unit_id)
        check_plan(points, mine, limit, gap)
    assert len(reads) == sum(
        len(plan_reads(u, ps, max_registers=limit, max_gap=gap)) for u, ps in devices.items()
    )


@settings(max_examples=60, deadline=None)
@given(register_maps())
def test_merged_never_needs_more_reads_than_one_per_point(points: list[Point]) -> None:
    assert len(plan_reads(1, points)) <= len(one_per_point(1, points))


# ---- splitting a read a meter refused -----------------------------------------------------


def test_split_cuts_at_the_widest_hole_then_near_the_middle() -> None:
    (merged, _total) = plan_profile(1, load_profile("eastron-sdm630"))
    first, rest = split_read(merged)
    # 0x0012-0x0033 is the widest run of unmapped registers in 0x0000-0x004B
    assert (first.address, first.end, rest.address, rest.end) == (0x0000, 0x0012, 0x0034, 0x004C)
    phases_a, phases_b = split_read(first)  # nine adjacent floats: cut next to the middle
    assert (phases_a.count, phases_b.count) == (8, 10)


@given(register_maps(), st.data())
@settings(max_examples=200, deadline=None)
def test_split_parts_cover_the_read_exactly_and_are_shorter(
    points: list[Point], data: st.DataObject
) -> None:
    reads = [r for r in plan_reads(7, points, max_gap=200) if len(r.points) > 1]
    if not reads:
        return
    read = data.draw(st.sampled_from(reads))
    parts = split_read(read)
    check_plan(list(read.points), parts, read.count - 1, read.count)
    assert parts[0].end <= parts[1].address  # in address order, not overlapping
    assert {(p.unit_id, p.function) for p in parts} == {(read.unit_id, read.function)}
    words = list(range(read.count))
    assert {
        **parts[0].decode(words[: parts[0].count]),
        **parts[1].decode(words[parts[1].address - read.address : parts[1].end - read.address]),
    } == read.decode(words)


# ---- what a planned read addresses, and when a refusal splits it -----------------------------


def test_every_planned_read_addresses_its_device() -> None:
    profile = load_profile("eastron-sdm630")
    assert {r.unit_id for r in plan_profile(17, profile)} == {17}
    naive = one_per_point(9, profile.points)
    assert {(r.unit_id, r.function) for r in naive} == {(9, FunctionCode.INPUT)}
    assert [r.count for r in naive] == [
        p.words for p in sorted(profile.points, key=lambda p: p.address)
    ]
    assert {r.unit_id for r in plan_bus({3: profile.points, 5: profile.points})} == {3, 5}


def test_one_register_reads_are_allowed() -> None:
    points = [_point("a", 0, "u16"), _point("b", 1, "u16")]
    assert [(r.address, r.count) for r in plan_reads(1, points, max_registers=1)] == [
        (0, 1),
        (1, 1),
    ]
    with pytest.raises(ValueError, match="max_registers"):
        plan_reads(1, points, max_registers=0)


def _point(name: str, address: int, type_: str) -> Point:
    return Point.model_validate(
        {"name": name, "kind": "k", "function": 3, "address": address, "type": type_}
    )


def test_only_a_refused_span_of_several_points_is_split() -> None:
    (merged,) = plan_reads(1, [_point("a", 0, "u16"), _point("b", 5, "u16")])
    (single,) = plan_reads(1, [_point("a", 0, "u16")])
    assert refused_span(MeterExceptionCodeError(1, 3, 2), merged)
    assert refused_span(MeterExceptionCodeError(1, 3, 3), merged)
    assert not refused_span(MeterExceptionCodeError(1, 3, 4), merged)  # device failure
    assert not refused_span(MeterExceptionCodeError(1, 3, 2), single)
    assert not refused_span(MeterTimeoutError(1, "no answer"), merged)
