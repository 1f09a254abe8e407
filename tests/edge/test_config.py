"""The gateway's YAML: the example loads; every mistake names the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import load_config
from protocols.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "firmware-configs" / "gateways").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_configs_load(path: Path) -> None:
    config = load_config(path)
    assert config.gateway_id
    assert config.store.path.is_absolute()


def test_there_is_an_example() -> None:
    assert EXAMPLES


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("gateway_id: gw-1\nmqtt: {url: 'http://x'}\n", ["mqtt.url", "mqtt://HOST:PORT"]),
        ("gateway_id: 'bad id!'\n", ["gateway_id", "letters, digits"]),
        ("gateway_id: gw-1\nmqtt: {protocol: '4'}\n", ["mqtt.protocol", "'3.1.1' or '5'"]),
        ("gateway_id: gw-1\nmqt: {}\n", ["mqt", "Extra inputs are not permitted"]),
        ("mqtt: {}\n", ["gateway_id", "Field required"]),
        (
            "gateway_id: gw-1\nbuses: [{name: b, devices: []}]\n",
            ["bus 'b'", "exactly one of 'tcp' or 'serial'"],
        ),
        (
            "gateway_id: gw-1\nbuses: [{name: b, tcp: 'nohost'}]\n",
            ["buses.0.tcp", "HOST:PORT"],
        ),
        (
            "gateway_id: gw-1\nbuses: [{name: b, tcp: 'h:1', devices: [{id: m, unit_id: 300, "
            "profile: eastron-sdm120}]}]\n",
            ["buses.0.devices.0.unit_id", "less than or equal to 247"],
        ),
        ("gateway_id: gw-1\nmqtt: {password: changeme}\n", ["placeholder", "development: true"]),
        ("gateway_id: [unclosed\n", ["not valid YAML"]),
        ("", ["file is empty"]),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, needles: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message


def test_placeholder_password_allowed_in_development(tmp_path: Path) -> None:
    path = write(tmp_path, "gateway_id: gw-1\ndevelopment: true\nmqtt: {password: changeme}\n")
    assert load_config(path).mqtt.password == "changeme"


def test_relative_store_path_is_next_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "gateway_id: gw-1\nstore: {path: state/gw.db}\n")
    assert load_config(path).store.path == (tmp_path / "state" / "gw.db").resolve()
