"""Register words → values. Words are 16-bit unsigned ints as the wire delivers them."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from protocols.modbus.profile import DataType, Order, Point

_FORMATS = {
    DataType.U16: "H",
    DataType.I16: "h",
    DataType.U32: "I",
    DataType.I32: "i",
    DataType.F32: "f",
    DataType.F64: "d",
}


def decode_point(point: Point, words: Sequence[int]) -> float:
    """Decode one point from exactly `point.type.words` registers and apply its scale."""
    if len(words) != point.type.words:
        raise ValueError(f"{point.name}: needs {point.type.words} registers, got {len(words)}")
    ordered = list(words) if point.word_order is Order.BIG else list(reversed(words))
    raw = b"".join(w.to_bytes(2, "big") for w in ordered)
    if point.byte_order is Order.LITTLE:
        raw = b"".join(raw[i : i + 2][::-1] for i in range(0, len(raw), 2))
    (value,) = struct.unpack(">" + _FORMATS[point.type], raw)
    return float(value) * point.scale


def encode_point(point: Point, value: float) -> list[int]:
    """The inverse of `decode_point`: what a meter would put on the wire for `value`."""
    raw_value: float | int = value / point.scale
    if point.type not in {DataType.F32, DataType.F64}:
        raw_value = round(raw_value)
    raw = struct.pack(">" + _FORMATS[point.type], raw_value)
    if point.byte_order is Order.LITTLE:
        raw = b"".join(raw[i : i + 2][::-1] for i in range(0, len(raw), 2))
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return words if point.word_order is Order.BIG else list(reversed(words))
