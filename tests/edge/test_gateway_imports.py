"""A gateway with meters only loads no door stack: every module it imports is resident memory on a
small box, so the doors' libraries (face recognition, BLE, PIN hashing) load only where a door
uses them. The gateway runs in a fresh interpreter, as `anju edge run` starts it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]

# Imported by `anju edge run` up to its first poll, with the services cancelled after a few turns
# of the loop (the broker and the meters' host refuse the connection): what the start loads.
START = """
import asyncio, json, sys
from pathlib import Path

from anju.cli import cli
from anju.commands.edge import edge
from anju.runner import run_until_signal
from edge.config import load_config
from edge.gateway import run_gateway


async def start(config):
    task = asyncio.create_task(run_gateway(config))
    for _ in range(100):
        await asyncio.sleep(0)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


asyncio.run(start(load_config(Path(sys.argv[1]))))
json.dump(sorted(sys.modules), sys.stdout)
"""

# What a meters-only gateway does not need, and the module that would pull it in.
DOOR_ONLY = [
    "cryptography",  # door snapshots and BLE lock frames; the gateway verifies with libsodium
    "protocols.lock.frames",
    "argon2",  # PIN hashing
    "numpy",  # face recognition
    "cv2",
    "onnxruntime",
    "bleak",  # BLE locks
    "aioesphomeapi",  # BLE locks through ESPHome proxies
    "bleak_esphome",
    "habluetooth",
    "edge.door.service",
    "edge.door.pipeline",
    "edge.door.keypad",
    "protocols.face.engine",
]


def meters_only(tmp_path: Path) -> Path:
    config = {
        "gateway_id": "gw-meters",
        "mqtt": {"url": f"mqtt://127.0.0.1:{free_port()}"},
        "store": {"path": str(tmp_path / "gateway.db")},
        "buses": [
            {
                "name": "meters",
                "tcp": f"127.0.0.1:{free_port()}",
                "devices": [{"id": "m-1", "unit_id": 1, "profile": "eastron-sdm630"}],
            }
        ],
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _modules(script: str, argument: str) -> set[str]:
    """What a fresh interpreter loaded running `script` (which prints its sys.modules)."""
    done = subprocess.run(
        [sys.executable, "-c", script, argument],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


@pytest.mark.timeout(60)
def test_a_meters_only_gateway_imports_no_door_stack(tmp_path: Path) -> None:
    modules = _modules(START, str(meters_only(tmp_path)))
    assert "edge.gateway" in modules
    assert "pymodbus.client" in modules  # the start did reach the meters
    loaded = [name for name in DOOR_ONLY if name in modules]
    assert loaded == []


@pytest.mark.timeout(60)
def test_anju_edge_run_starts_the_gateway_without_click(tmp_path: Path) -> None:
    """The command a gateway's service runs: `-X importtime` lists every module it imports."""
    config = str(meters_only(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "anju", "edge", "run", "--config", config],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stderr is not None
    lines = []
    try:
        for line in proc.stderr:  # until the gateway has started its services
            lines.append(line)
            if "gateway starting" in line:
                break
    finally:
        proc.terminate()
        lines += proc.communicate(timeout=30)[1].splitlines()
    imported = {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}
    assert "edge.gateway" in imported
    assert [name for name in imported if name.split(".")[0] == "click"] == []


# Builds each door's lock as `anju edge run` does, then lists what the process loaded.
LOCKS = """
import json, sys
from datetime import UTC, datetime

from edge.door.config import DoorConfig
from edge.gateway import ConfiguredLocks

door = DoorConfig.model_validate(json.loads(sys.argv[1]))
ConfiguredLocks(lambda: datetime.now(UTC))(door)
json.dump(sorted(sys.modules), sys.stdout)
"""
ESPHOME_ONLY = ["aioesphomeapi", "bleak_esphome", "habluetooth", "edge.door.ble.esphome"]


def _loaded_for(tmp_path: Path, ble: dict[str, object]) -> set[str]:
    key = tmp_path / "lock.key"
    key.write_text("00" * 16)
    door = {
        "id": "front",
        "source": "usb:0",
        "lock": "ble",
        "ble": {
            "address": "C4:7F:51:00:12:34",
            "key_file": str(key),
            "counter_file": str(tmp_path / "c.json"),
            **ble,
        },
    }
    return _modules(LOCKS, json.dumps(door))


@pytest.mark.timeout(60)
def test_a_host_radio_door_imports_no_esphome_stack(tmp_path: Path) -> None:
    modules = _loaded_for(tmp_path, {"radio": "host"})
    assert "bleak" in modules  # the door's driver did load
    assert [name for name in ESPHOME_ONLY if name in modules] == []


@pytest.mark.timeout(60)
def test_an_esphome_door_loads_the_proxy_stack(tmp_path: Path) -> None:
    modules = _loaded_for(tmp_path, {"radio": "esphome", "proxies": [{"host": "proxy-3.lan"}]})
    assert [name for name in ESPHOME_ONLY if name not in modules] == []
