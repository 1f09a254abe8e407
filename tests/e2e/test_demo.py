"""`anju demo` as a user runs it: a reading reaches the API, the door opens for the demo tenant
and refuses a stranger (both decisions read back through the API), and Ctrl-C leaves no process
behind. The door decides by the access list the cloud compiled from the tenant's lease and
published over the demo's broker: lease → list → gateway → face → lock."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from anju.demo import DEMO_LOGIN
from cloud.seed import DEMO_PASSWORD
from tests.conftest import DATABASE_URL, MQTT_URL, free_port, postgres_schema
from tests.e2e.link_harness import forget_gateway

pytestmark = pytest.mark.timeout(180)

READING_DEADLINE_S = 90.0
STOP_DEADLINE_S = 30.0
# (servers, how the interrupt arrives): both interrupts on the embedded servers, one on the real.
RUNS = [("embedded", "terminal-ctrl-c"), ("embedded", "demo-only")] + (
    [("mosquitto+postgresql", "terminal-ctrl-c")] if MQTT_URL and DATABASE_URL else []
)


@pytest.fixture(params=RUNS, ids=["-".join(r) for r in RUNS])
def run(request: pytest.FixtureRequest) -> tuple[str, str]:
    servers, interrupt = request.param
    return servers, interrupt


@pytest.fixture
def server_args(run: tuple[str, str]) -> Iterator[list[str]]:
    gateway = ["--gateway-id", f"demo-{uuid.uuid4().hex[:8]}"]
    if run[0] == "embedded":
        yield ["--broker-port", str(free_port()), *gateway]
        return
    assert MQTT_URL is not None
    with ExitStack() as stack:
        url = stack.enter_context(postgres_schema())
        yield ["--mqtt-url", MQTT_URL, "--mqtt-protocol", "5", "--database-url", url, *gateway]
    asyncio.run(forget_gateway(MQTT_URL, gateway[1]))


def wait_for_reading(api: str, data_dir: Path, demo: subprocess.Popen[bytes]) -> dict[str, object]:
    """Sign in as the seeded manager and poll the first simulated meter's readings."""
    deadline = time.monotonic() + READING_DEADLINE_S
    config = data_dir / "gateway.yaml"
    with httpx.Client(base_url=api, timeout=2.0) as http:
        while time.monotonic() < deadline:
            assert demo.poll() is None, f"demo exited early with {demo.returncode}"
            try:
                page = poll_once(http, config)
            except httpx.TransportError:
                page = None
            if page:
                return page
            time.sleep(0.25)  # real processes on real sockets: nothing to drive
    pytest.fail(f"no reading within {READING_DEADLINE_S} s")


def wait_for_door(api: str, data_dir: Path, demo: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
    """The door's decisions through the API (its events, oldest first), once there are two
    (the camera shows two people)."""
    deadline = time.monotonic() + READING_DEADLINE_S
    gateway = yaml.safe_load((data_dir / "gateway.yaml").read_text())["gateway_id"]
    with httpx.Client(base_url=api, timeout=2.0) as http:
        login = {"username": DEMO_LOGIN, "password": DEMO_PASSWORD}
        token = http.post("/api/v1/auth/login", json=login).json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        (door,) = http.get("/api/v1/doors", params={"gateway_id": gateway}).json()["items"]
        while time.monotonic() < deadline:
            assert demo.poll() is None, f"demo exited early with {demo.returncode}"
            resp = http.get(f"/api/v1/doors/{door['id']}/events")
            assert resp.status_code == 200, resp.text
            decisions = [
                e["data"] | {"type": e["type"]}
                for e in reversed(resp.json()["items"])
                if e["type"] in ("access.granted", "access.refused")
            ]
            if len(decisions) >= 2:
                return decisions
            time.sleep(0.25)  # as above
    pytest.fail(f"no two door decisions within {READING_DEADLINE_S} s")


def poll_once(http: httpx.Client, config: Path) -> dict[str, object] | None:
    if not config.exists():
        return None
    if "Authorization" not in http.headers:
        login = {"username": DEMO_LOGIN, "password": DEMO_PASSWORD}
        resp = http.post("/api/v1/auth/login", json=login)
        if resp.status_code != 200:
            return None
        http.headers["Authorization"] = f"Bearer {resp.json()['token']}"
    meter = yaml.safe_load(config.read_text())["buses"][0]["devices"][0]["id"]
    resp = http.get(f"/api/v1/meters/{meter}/readings", params={"limit": 5})
    assert resp.status_code == 200, resp.text
    page: dict[str, object] = resp.json()
    return page if page["items"] else None


def test_demo_runs_a_building_and_stops_cleanly(
    tmp_path: Path, server_args: list[str], run: tuple[str, str]
) -> None:
    """Ctrl-C in a terminal signals the whole group; a supervisor may signal the demo alone."""
    http_port = free_port()
    args = [
        sys.executable,
        "-m",
        "anju",
        "demo",
        "--data-dir",
        str(tmp_path / "demo"),
        "--http-port",
        str(http_port),
        "--modbus-port",
        str(free_port()),
        *server_args,
    ]
    log = (tmp_path / "demo.log").open("wb")
    # Its own process group, so the SIGINT below reaches everything as a terminal's Ctrl-C does.
    demo = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(), start_new_session=True
    )
    children: list[psutil.Process] = []
    try:
        page = wait_for_reading(f"http://127.0.0.1:{http_port}", tmp_path / "demo", demo)
        decisions = wait_for_door(f"http://127.0.0.1:{http_port}", tmp_path / "demo", demo)
        children = psutil.Process(demo.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        for part in ("cloud serve", "sim meters", "edge run"):
            assert part in names, names
        if run[1] == "terminal-ctrl-c":
            os.killpg(demo.pid, signal.SIGINT)
        else:
            demo.send_signal(signal.SIGINT)
        assert demo.wait(STOP_DEADLINE_S) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        log.close()
    output = (tmp_path / "demo.log").read_text()
    assert "Traceback" not in output, output
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == [], f"left running: {[p.pid for p in alive]}\n{output}"
    items = page["items"]
    assert isinstance(items, list)
    assert items
    assert {"point", "value", "unit", "ts"} <= set(items[0])
    found = re.search(r"demo: tenant (\d+) enrolled", output)
    assert found, output
    tenant = f"tenant:{found[1]}"
    seen = [(d["type"], d["door"], d["how"], d["reason"], d["subject"]) for d in decisions]
    assert seen == [
        ("access.granted", "front", "face", "granted", tenant),
        ("access.refused", "front", "face", "unknown_credential", None),
    ]
    assert decisions[0]["right"].startswith("lease:")  # the lease's right opened the door
    assert "lock_error" not in decisions[0]  # the emulated lock acknowledged over BLE
