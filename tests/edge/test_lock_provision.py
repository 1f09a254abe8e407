"""`anju edge lock provision`: a new 128-bit key for a door's lock, owner-only, that the BLE
driver reads; an existing key is never replaced by accident; the key is never printed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from edge.door.ble.driver import load_lock_key
from edge.door.ble.provision import fingerprint, provision_key
from protocols.errors import ConfigError
from tests.test_cli import assert_one_line_error, run_anju


def gateway_yaml(tmp_path: Path) -> Path:
    """A gateway with a BLE-locked door (`front`) and one with the simulated lock (`side`)."""
    (tmp_path / "cam").mkdir()
    ble = {"address": "C4:7F:51:00:12:34", "key_file": "keys/front.key",
           "counter_file": "state/front.json"}  # fmt: skip
    doors = [{"id": "front", "source": "cam", "lock": "ble", "ble": ble},
             {"id": "side", "source": "cam"}]  # fmt: skip
    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump({"gateway_id": "gw-door", "doors": doors}))
    return config


def test_the_cli_writes_a_key_the_driver_reads_and_prints_only_its_fingerprint(
    tmp_path: Path,
) -> None:
    config = gateway_yaml(tmp_path)
    done = run_anju("edge", "lock", "provision", "--config", str(config), "--door", "front")
    assert done.returncode == 0, done.stderr
    path = tmp_path / "keys" / "front.key"
    key = load_lock_key(path)
    assert len(key) == 16
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert fingerprint(key) in done.stdout
    assert key.hex() not in done.stdout + done.stderr
    assert [p.name for p in path.parent.iterdir()] == ["front.key"]  # no stage left behind

    again = run_anju("edge", "lock", "provision", "--config", str(config), "--door", "front")
    assert_one_line_error(again, "already holds a lock key", "--replace")
    assert load_lock_key(path) == key

    rekey = run_anju(
        "edge", "lock", "provision", "--config", str(config), "--door", "front", "--replace"
    )
    assert rekey.returncode == 0, rekey.stderr
    assert load_lock_key(path) != key

    for door in ("side", "nope"):
        result = run_anju("edge", "lock", "provision", "--config", str(config), "--door", door)
        assert_one_line_error(result, f"no door '{door}' with a `ble:` lock")


def test_keys_are_random_and_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        keys = {provision_key(tmp_path / f"k{i}.key") for i in range(20)}
    finally:
        os.umask(old)
    assert len(keys) == 20
    assert {stat.S_IMODE((tmp_path / f"k{i}.key").stat().st_mode) for i in range(20)} == {0o600}
    with pytest.raises(ConfigError, match="already holds"):
        provision_key(tmp_path / "k0.key")
