"""The keypad's bytes as entries: however the bytes are split, noise and overlong entries
spoil only their own entry, and every other non-empty entry is presented (so it counts)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.access.decide import Code, Pin
from protocols.access.keypad import MAX_ENTRY, EntryReader, entry


def test_pins_codes_and_odd_entries() -> None:
    assert entry("1203*246810") == Pin("1203", "246810")
    assert entry("123456789") == Code("123456789")
    assert entry("*") == Pin("", "")
    assert entry("12*34*5") == Code("12*34*5")  # presented, matches nothing, counts


@pytest.mark.parametrize("step", [1, 2, 5, 100])
def test_entries_arrive_however_the_bytes_are_split(step: int) -> None:
    """Key by key or as lines with CR LF: the same entries."""
    wire = b"1203*246810#123456789\r\n\r\n#42#"
    reader = EntryReader()
    got = [e for i in range(0, len(wire), step) for e in reader.feed(wire[i : i + step])]
    assert got == [Pin("1203", "246810"), Code("123456789"), Code("42")]


def test_noise_and_overlong_entries_are_spoiled_alone() -> None:
    reader = EntryReader()
    wire = b"12\x0034#" + b"9" * (MAX_ENTRY + 1) + b"#" + b"9" * MAX_ENTRY + b"#5#"
    assert reader.feed(wire) == [None, None, Code("9" * MAX_ENTRY), Code("5")]
    assert reader.spoiled == 2


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_any_bytes_give_bounded_entries(chunks: list[bytes]) -> None:
    reader = EntryReader()
    for chunk in chunks:
        for got in reader.feed(chunk):
            if isinstance(got, Pin):
                assert len(got.keypad_id) + len(got.pin) < MAX_ENTRY
            elif isinstance(got, Code):
                assert 0 < len(got.code) <= MAX_ENTRY
                assert set(got.code) <= set("0123456789*")
