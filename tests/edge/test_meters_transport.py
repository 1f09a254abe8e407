"""The transport's one-unpack reply decoding gives what pymodbus's own decoding gives."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)

from edge.meters.transport import _FastHoldingRegisters, _FastInputRegisters

PAIRS = [
    (ReadHoldingRegistersResponse, _FastHoldingRegisters),
    (ReadInputRegistersResponse, _FastInputRegisters),
]


@given(st.lists(st.integers(0, 0xFFFF), min_size=0, max_size=125), st.sampled_from(PAIRS))
def test_fast_reply_decoding_matches_pymodbus(
    words: list[int], pair: tuple[type[ReadHoldingRegistersResponse], ...]
) -> None:
    theirs, ours = pair[0](), pair[1]()
    data = bytes([2 * len(words)]) + b"".join(w.to_bytes(2, "big") for w in words)
    theirs.decode(data)
    ours.decode(data)
    assert ours.registers == theirs.registers == words
    assert ours.function_code == theirs.function_code


def test_a_short_reply_is_refused_as_pymodbus_refuses_it() -> None:
    with pytest.raises(ModbusIOException, match="byte_count"):
        _FastInputRegisters().decode(bytes([8, 0, 1, 0, 2]))
