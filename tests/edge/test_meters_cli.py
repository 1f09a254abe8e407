"""`anju sim meters` and `anju edge read` as an installer runs them: separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.timeout(60)

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


@contextmanager
def sim(*args: str) -> Iterator[str]:
    """Run `anju sim meters ARGS`; yields the line it prints once serving."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "anju", "sim", "meters", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert " on " in line, line
        yield line
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()


def read(*args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "anju", "edge", "read", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
        check=False,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.startswith("{") else {}


def test_edge_read_over_tcp_prints_values_and_errors_as_json() -> None:
    port = free_port()
    with sim("--profile", "eastron-sdm630", "--count", "3", "--port", str(port),
             "--fault", "3:exception:2"):  # fmt: skip
        code, out = read("--profile", "eastron-sdm630", "--tcp", f"127.0.0.1:{port}", "--unit", "2")
        assert code == 0
        assert out["requests"] == 2
        assert out["values"]["voltage_l1"] == {"value": 230.0, "unit": "V", "kind": "voltage_v"}
        assert out["values"]["total_energy"]["value"] > 1000
        assert out["errors"] == []

        code, out = read("--profile", "eastron-sdm630", "--tcp", f"127.0.0.1:{port}", "--unit", "3")
        assert code == 1
        assert out["values"] == {}
        assert {e["error"] for e in out["errors"]} == {"MeterExceptionCodeError"}
        assert "illegal data address" in out["errors"][0]["message"]


def test_one_simulator_process_serves_several_hosts() -> None:
    ports = [free_port(), free_port()]
    with sim("--profile", "eastron-sdm120", "--count", "2", "--port", str(ports[0]),
             "--port", str(ports[1]), "--fault", "2:exception:4") as banner:  # fmt: skip
        assert all(f"127.0.0.1:{port}" in banner for port in ports)
        for port in ports:
            code, out = read("--profile", "eastron-sdm120", "--tcp", f"127.0.0.1:{port}",
                             "--unit", "1")  # fmt: skip
            assert code == 0, out
            assert out["values"]["voltage"]["value"] == 230.0
            code, out = read("--profile", "eastron-sdm120", "--tcp", f"127.0.0.1:{port}",
                             "--unit", "2")  # fmt: skip
            assert code == 1, "the fault is on unit 2 of every host"


def test_edge_read_splits_reads_a_meter_refuses() -> None:
    port = free_port()
    with sim("--profile", "eastron-sdm630", "--count", "1", "--port", str(port),
             "--fault", "1:max-span:20"):  # fmt: skip
        code, out = read("--profile", "eastron-sdm630", "--tcp", f"127.0.0.1:{port}", "--unit", "1")
    assert code == 0, out
    assert len(out["values"]) == 18
    assert out["errors"] == []
    assert out["requests"] == 6  # 2 refused, 4 read


def test_edge_read_over_a_simulated_serial_line() -> None:
    with sim("--profile", "chint-ddsu666", "--count", "2", "--serial", "pty") as banner:
        device = banner.split(" on ")[1].split()[0]
        code, out = read(
            "--profile", "chint-ddsu666", "--serial", device, "--baud", "9600", "--unit", "2"
        )
    assert code == 0, out
    assert out["values"]["voltage"]["value"] == 230.0
    assert out["link"] == f"rtu://{device}@9600"


def test_edge_read_refuses_two_transports() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "anju", "edge", "read", "--profile", "eastron-sdm120",
         "--tcp", "127.0.0.1:1", "--serial", "/dev/null", "--unit", "1"],
        capture_output=True, text=True, env=ENV, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "exactly one of --tcp" in done.stderr
