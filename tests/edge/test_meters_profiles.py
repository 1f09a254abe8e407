"""Profiles load from firmware-configs/meters; a bad one is refused naming file, point, reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import GatewayConfig
from edge.meters.profiles import known_profiles, load_profile
from protocols.errors import ConfigError

GOOD_POINT = "{name: v, kind: voltage_v, function: 4, address: 0, type: f32}"


def write(tmp_path: Path, points: str, extra: str = "") -> Path:
    path = tmp_path / "meter.yaml"
    path.write_text(f"model: Test\n{extra}points:\n{points}\n", encoding="utf-8")
    return path


def test_shipped_profiles_load() -> None:
    assert {
        "eastron-sdm120",
        "eastron-sdm630",
        "chint-ddsu666",
        "chint-dtsu666",
        "tuf-2000",
        "water-f32-dcba",
    } <= set(known_profiles())
    for name in known_profiles():
        assert load_profile(name).points


@pytest.mark.parametrize(
    ("points", "reason"),
    [
        (
            "  - {name: energy, kind: e, function: 5, address: 0, type: f32}",
            "point 'energy' function: Input should be 3 or 4",
        ),
        (
            "  - {name: energy, kind: e, function: 4, address: 0, type: float}",
            "point 'energy' type: Input should be",
        ),
        (
            "  - {name: serial, kind: s, function: 3, address: 0, type: string}",
            "point 'serial': a string point needs 'length'",
        ),
        (
            "  - {name: big, kind: s, function: 3, address: 0xFFFF, type: f32}",
            "point 'big': point runs past register 0xFFFF",
        ),
        (
            f"  - {GOOD_POINT}\n  - {{name: w, kind: k, function: 4, address: 1, type: u16}}",
            "point 'w': register 0x0001 is also in 'v'",
        ),
        (f"  - {GOOD_POINT}\n  - {GOOD_POINT}", "point 'v': name used twice"),
        ("  - {name: x, kind: k, function: 4, address: 0, type: u16, colour: red}", "colour"),
    ],
)
def test_bad_profile_names_file_point_and_reason(tmp_path: Path, points: str, reason: str) -> None:
    path = write(tmp_path, points)
    with pytest.raises(ConfigError) as info:
        load_profile(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert reason in message


def test_point_wider_than_the_profile_limit_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"  - {GOOD_POINT}", extra="max_registers: 1\n")
    with pytest.raises(ConfigError, match="'v': 2 registers exceed max_registers 1"):
        load_profile(str(path))


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"known profiles: .*eastron-sdm630"):
        load_profile("no-such-meter")


def bus(**kw: object) -> GatewayConfig:
    return GatewayConfig.model_validate({"gateway_id": "gw-1", "buses": [{"name": "b", **kw}]})


def test_bus_refuses_duplicate_unit_ids_on_one_line() -> None:
    devices = [
        {"id": "a", "unit_id": 1, "profile": "eastron-sdm120"},
        {"id": "b", "unit_id": 1, "profile": "eastron-sdm120"},
    ]
    with pytest.raises(ValueError, match="unit_id 1 used twice"):
        bus(serial="/dev/ttyUSB0", devices=devices)
    # The same unit id behind two different TCP hosts is two meters.
    devices[1]["tcp"] = "10.0.0.9:502"
    assert bus(tcp="10.0.0.8:502", devices=devices).buses[0].devices[1].tcp == "10.0.0.9:502"
