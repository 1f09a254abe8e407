"""Decode vectors built by hand from each meter's documented encoding (struct, not our encoder)."""

from __future__ import annotations

import struct

import pytest

from edge.meters.profiles import known_profiles, load_profile
from protocols.modbus.decode import decode_number, decode_point, encode_point
from protocols.modbus.plan import plan_profile, plan_reads
from protocols.modbus.profile import DataType, FunctionCode, Point


def words(raw: bytes) -> list[int]:
    """Wire bytes → 16-bit registers, as a Modbus reply carries them (high byte first)."""
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def point(type_: str, **kw: object) -> Point:
    return Point.model_validate(
        {"name": "p", "kind": "k", "function": 3, "address": 0, "type": type_, **kw}
    )


# ---- single types and orders --------------------------------------------------------------


def test_float_abcd_published_constant() -> None:
    # IEEE 754: 230.0 = 0x43660000, 10.0 = 0x41200000.
    assert decode_point(point("f32"), [0x4366, 0x0000]) == 230.0
    assert decode_point(point("f32"), [0x4120, 0x0000]) == 10.0


def test_float_word_and_byte_orders() -> None:
    # 10.0 = bytes 41 20 00 00 (ABCD). CDAB swaps words, BADC swaps bytes, DCBA both.
    assert decode_point(point("f32", word_order="little"), [0x0000, 0x4120]) == 10.0
    assert decode_point(point("f32", byte_order="little"), [0x2041, 0x0000]) == 10.0
    dcba = point("f32", byte_order="little", word_order="little")
    assert decode_point(dcba, [0x0000, 0x2041]) == 10.0


@pytest.mark.parametrize(
    ("type_", "raw", "expected"),
    [
        ("u16", b"\xff\xfe", 65534),
        ("i16", b"\xff\xfe", -2),
        ("u32", b"\x00\x01\x00\x02", 65538),
        ("i32", b"\xff\xff\xff\xfe", -2),
        ("f64", struct.pack(">d", 12345.678901234), 12345.678901234),
    ],
)
def test_integer_and_double_types(type_: str, raw: bytes, expected: float) -> None:
    assert decode_point(point(type_), words(raw)) == expected


def test_scale_divides_scaled_registers() -> None:
    # DTSU666 keeps 230.5 V as the float 2305.0 in its register.
    assert decode_point(point("f32", scale=0.1), words(struct.pack(">f", 2305.0))) == 230.5
    assert decode_point(point("i16", scale=0.01), words(b"\x13\x88")) == 50.0


def test_string_runs_in_register_order() -> None:
    p = point("string", length=4)
    assert decode_point(p, [0x5344, 0x4D36, 0x3330, 0x0000]) == "SDM630"
    swapped = point("string", length=3, byte_order="little")
    assert decode_point(swapped, [0x4453, 0x364D, 0x3033]) == "SDM630"


def test_long_plus_real_fraction_low_word_first() -> None:
    # TUF-2000: LONG 123456 then REAL4 0.5, each sent low word first.
    whole = struct.pack(">i", 123456)
    frac = struct.pack(">f", 0.5)
    regs = words(whole[2:] + whole[:2] + frac[2:] + frac[:2])
    assert decode_point(point("i32+f32", word_order="little"), regs) == 123456.5


def test_wrong_register_count_is_refused() -> None:
    with pytest.raises(ValueError, match="needs 2 registers"):
        decode_point(point("f32"), [1])


@pytest.mark.parametrize(
    "p",
    [
        point("f32", byte_order="little", word_order="little"),
        point("i32+f32", word_order="little"),
        point("u32", word_order="little"),
        point("i16", scale=0.1),
        point("string", length=3),
    ],
)
def test_simulator_encoding_round_trips(p: Point) -> None:
    value: float | str = 1234.5 if p.type is not DataType.U32 else 1234.0
    if p.type is DataType.STRING:
        value = "AB12"
    assert decode_point(p, encode_point(p, value)) == pytest.approx(value)


# ---- every profile against its documented register map --------------------------------


def f32_abcd(value: float) -> list[int]:
    return words(struct.pack(">f", value))


def f32_dcba(value: float) -> list[int]:
    return words(struct.pack("<f", value))


def f32_cdab(value: float) -> list[int]:
    raw = struct.pack(">f", value)
    return words(raw[2:] + raw[:2])


def long_real_cdab(whole: int, fraction: float) -> list[int]:
    a, b = struct.pack(">i", whole), struct.pack(">f", fraction)
    return words(a[2:] + a[:2] + b[2:] + b[:2])


# name -> function, {documented address: wire words}, {point: expected value}
VECTORS: dict[str, tuple[int, dict[int, list[int]], dict[str, float]]] = {
    "eastron-sdm120": (
        4,
        {
            0x0000: f32_abcd(229.5),
            0x0006: f32_abcd(4.25),
            0x000C: f32_abcd(975.0),
            0x0046: f32_abcd(50.0),
            0x0048: f32_abcd(12345.5),
            0x0156: f32_abcd(12346.25),
        },
        {
            "voltage": 229.5,
            "current": 4.25,
            "power": 975.0,
            "frequency": 50.0,
            "import_energy": 12345.5,
            "total_energy": 12346.25,
        },
    ),
    "eastron-sdm630": (
        4,
        {
            0x0000: f32_abcd(231.0),
            0x0004: f32_abcd(229.0),
            0x000A: f32_abcd(3.5),
            0x0010: f32_abcd(805.0),
            0x0034: f32_abcd(2400.0),
            0x003E: f32_abcd(0.96875),
            0x0046: f32_abcd(49.75),
            0x004A: f32_abcd(2.5),
            0x0156: f32_abcd(54321.5),
            0x0158: f32_abcd(88.0),
        },
        {
            "voltage_l1": 231.0,
            "voltage_l3": 229.0,
            "current_l3": 3.5,
            "power_l3": 805.0,
            "power": 2400.0,
            "power_factor": 0.96875,
            "frequency": 49.75,
            "export_energy": 2.5,
            "total_energy": 54321.5,
            "total_reactive_energy": 88.0,
        },
    ),
    "chint-dtsu666": (
        3,
        {
            0x101E: f32_abcd(4567.25),
            0x1028: f32_abcd(1.5),
            0x2006: f32_abcd(2305.0),
            0x200C: f32_abcd(12500.0),
            0x2012: f32_abcd(34567.0),
            0x202A: f32_abcd(985.0),
            0x2044: f32_abcd(5001.0),
        },
        {
            "import_energy": 4567.25,
            "export_energy": 1.5,
            "voltage_a": 230.5,
            "current_a": 12.5,
            "power": 3456.7,
            "power_factor": 0.985,
            "frequency": 50.01,
        },
    ),
    "chint-ddsu666": (
        3,
        {
            0x2000: f32_abcd(220.5),
            0x2002: f32_abcd(6.5),
            0x2004: f32_abcd(1.25),
            0x200E: f32_abcd(50.0),
            0x4000: f32_abcd(789.5),
            0x400A: f32_abcd(0.25),
        },
        {
            "voltage": 220.5,
            "current": 6.5,
            "power": 1250.0,
            "frequency": 50.0,
            "total_energy": 789.5,
            "export_energy": 0.25,
        },
    ),
    # REG 0001 (flow) = address 0, REG 0009 (LONG) = 8, REG 0011 (fraction) = 10.
    "tuf-2000": (
        3,
        {0x0000: f32_cdab(3.75), 0x0008: long_real_cdab(98765, 0.25)},
        {"flow": 3.75, "positive_total": 98765.25},
    ),
    "water-f32-dcba": (
        3,
        {0x0001: f32_dcba(1234.5), 0x0003: f32_dcba(0.5), 0x0005: f32_dcba(1.75)},
        {"positive_total": 1234.5, "negative_total": 0.5, "flow": 1.75},
    ),
}


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_profile_decodes_its_documented_registers(name: str) -> None:
    function, block, expected = VECTORS[name]
    profile = load_profile(name)
    image: dict[int, int] = {}
    for address, regs in block.items():
        for i, word in enumerate(regs):
            image[address + i] = word
    got: dict[str, float | str] = {}
    for request in plan_profile(1, profile):
        assert request.function is FunctionCode(function)
        reply = [image.get(request.address + i, 0) for i in range(request.count)]
        got.update(request.decode(reply))
    for point_name, value in expected.items():
        assert got[point_name] == pytest.approx(value, rel=1e-6), point_name


def test_every_shipped_profile_has_vectors() -> None:
    assert sorted(VECTORS) == known_profiles()


# ---- edges the vectors above do not reach -------------------------------------------------


def test_byte_swapped_points_decode_through_a_planned_read() -> None:
    """BADC (little byte, big word) must not take the big-endian shortcut of a planned read."""
    badc = point("f32", name="badc", byte_order="little")
    abcd = point("f32", name="abcd", address=2)
    (read,) = plan_reads(1, [badc, abcd])
    raw = struct.pack(">f", 10.0)
    assert read.decode([*words(raw[1::-1] + raw[:1:-1]), *f32_abcd(10.0)]) == {
        "badc": 10.0,
        "abcd": 10.0,
    }


def test_long_plus_real_is_signed_and_scaled() -> None:
    whole, frac = struct.pack(">i", -3), struct.pack(">f", -0.25)
    p = point("i32+f32", scale=0.5)
    assert decode_point(p, words(whole + frac)) == -1.625
    assert encode_point(point("i32+f32"), -3.25) == words(whole + frac)


def test_decode_number_refuses_text() -> None:
    assert decode_number(point("i16", scale=0.1), words(b"\xff\xf6")) == -1.0
    with pytest.raises(TypeError, match="string point"):
        decode_number(point("string", length=1), [0x4142])


def test_text_stops_at_the_first_nul_and_shows_non_ascii_as_replaced() -> None:
    p = point("string", length=4)
    assert decode_point(p, words(b"AB\0CD\0EF")) == "AB"
    assert decode_point(p, words(b"\xc3\xa9A\0\0\0\0\0")) == "\ufffd\ufffdA"


def test_encoding_text_truncates_and_pads_with_nul() -> None:
    assert encode_point(point("string", length=2), "ABCDEFG") == [0x4142, 0x4344]
    assert encode_point(point("string", length=2), "A") == [0x4100, 0x0000]
    assert encode_point(point("string", length=2, byte_order="little"), "ABC") == [0x4241, 0x0043]


def test_encoding_follows_the_points_word_order() -> None:
    assert encode_point(point("f32"), 10.0) == [0x4120, 0x0000]
    assert encode_point(point("f32", word_order="little"), 10.0) == [0x0000, 0x4120]
    assert encode_point(point("i16", scale=0.1), -1.0) == [0xFFF6]
