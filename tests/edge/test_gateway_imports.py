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


@pytest.mark.timeout(60)
def test_a_meters_only_gateway_imports_no_door_stack(tmp_path: Path) -> None:
    path = meters_only(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", START, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout))
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
