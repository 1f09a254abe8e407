"""Register words → values. Words are 16-bit unsigned ints as the wire delivers them.

`word_order: little` means the low word comes first (CDAB); `byte_order: little` swaps the two
bytes inside each word (BADC); both together give DCBA.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Literal

from protocols.modbus.profile import DataType, Order, Point

_FORMATS = {
    DataType.U16: "H",
    DataType.I16: "h",
    DataType.U32: "I",
    DataType.I32: "i",
    DataType.F32: "f",
    DataType.F64: "d",
}


def _to_bytes(point: Point, words: Sequence[int]) -> bytes:
    ordered = list(words) if point.word_order is Order.BIG else list(reversed(words))
    raw = b"".join(w.to_bytes(2, "big") for w in ordered)
    if point.byte_order is Order.LITTLE:
        raw = b"".join(raw[i : i + 2][::-1] for i in range(0, len(raw), 2))
    return raw


def _from_bytes(point: Point, raw: bytes) -> list[int]:
    if point.byte_order is Order.LITTLE:
        raw = b"".join(raw[i : i + 2][::-1] for i in range(0, len(raw), 2))
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return words if point.word_order is Order.BIG else list(reversed(words))


def decode_point(point: Point, words: Sequence[int]) -> float | str:
    """Decode one point from exactly `point.words` registers and apply its scale."""
    if len(words) != point.words:
        raise ValueError(f"{point.name}: needs {point.words} registers, got {len(words)}")
    if point.type is DataType.STRING:
        # Word order does not apply to text: characters run in register order.
        raw = b"".join(
            w.to_bytes(2, "little" if point.byte_order is Order.LITTLE else "big") for w in words
        )
        return raw.split(b"\0", 1)[0].decode("ascii", errors="replace").strip()
    if point.type is DataType.I32_F32:
        # Each half keeps the point's byte/word order; the value is integer part + fraction.
        (whole,) = struct.unpack(">i", _to_bytes(point, words[:2]))
        (fraction,) = struct.unpack(">f", _to_bytes(point, words[2:]))
        return float(whole + fraction) * point.scale
    (value,) = struct.unpack(">" + _FORMATS[point.type], _to_bytes(point, words))
    return float(value) * point.scale


def decode_number(point: Point, words: Sequence[int]) -> float:
    value = decode_point(point, words)
    if isinstance(value, str):
        raise TypeError(f"{point.name}: a string point has no numeric value")
    return value


def encode_point(point: Point, value: float | str) -> list[int]:
    """The inverse of `decode_point`: what a meter would put on the wire for `value`.

    Used by the simulator; tests build their vectors by hand, not with this.
    """
    if point.type is DataType.STRING:
        raw = str(value).encode("ascii")[: point.words * 2].ljust(point.words * 2, b"\0")
        order: Literal["little", "big"] = "little" if point.byte_order is Order.LITTLE else "big"
        return [int.from_bytes(raw[i : i + 2], order) for i in range(0, len(raw), 2)]
    number = float(value) / point.scale
    if point.type is DataType.I32_F32:
        whole = int(number)
        return _from_bytes(point, struct.pack(">i", whole)) + _from_bytes(
            point, struct.pack(">f", number - whole)
        )
    raw_value: float | int = number
    if point.type not in {DataType.F32, DataType.F64}:
        raw_value = round(number)
    return _from_bytes(point, struct.pack(">" + _FORMATS[point.type], raw_value))
