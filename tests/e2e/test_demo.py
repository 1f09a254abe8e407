"""`anju demo` as a user runs it: a reading reaches the API, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import DATABASE_URL, MQTT_URL, free_port, postgres_schema

pytestmark = pytest.mark.timeout(180)

READING_DEADLINE_S = 90.0
STOP_DEADLINE_S = 30.0
SERVERS = ["embedded"] + (["mosquitto+postgresql"] if MQTT_URL and DATABASE_URL else [])


@pytest.fixture(params=SERVERS)
def server_args(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    if request.param == "embedded":
        yield ["--broker-port", str(free_port())]
        return
    assert MQTT_URL is not None
    with ExitStack() as stack:
        url = stack.enter_context(postgres_schema())
        yield ["--mqtt-url", MQTT_URL, "--mqtt-protocol", "5", "--database-url", url]


def wait_for_reading(api: str, meter: str, demo: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + READING_DEADLINE_S
    with httpx.Client(base_url=api, timeout=2.0) as http:
        while time.monotonic() < deadline:
            assert demo.poll() is None, f"demo exited early with {demo.returncode}"
            try:
                resp = http.get(f"/api/v1/meters/{meter}/readings", params={"limit": 5})
            except httpx.TransportError:
                resp = None
            if resp is not None and resp.status_code == 200:
                return resp.json()  # type: ignore[no-any-return]
            time.sleep(0.25)  # real processes on real sockets: nothing to drive
    pytest.fail(f"no reading for {meter} within {READING_DEADLINE_S} s")


@pytest.mark.parametrize("interrupt", ["terminal-ctrl-c", "demo-only"])
def test_demo_runs_a_building_and_stops_cleanly(
    tmp_path: Path, server_args: list[str], interrupt: str
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
        "--gateway-id",
        f"demo-{uuid.uuid4().hex[:8]}",
        *server_args,
    ]
    log = (tmp_path / "demo.log").open("wb")
    # Its own process group, so the SIGINT below reaches everything as a terminal's Ctrl-C does.
    demo = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(), start_new_session=True
    )
    children: list[psutil.Process] = []
    try:
        page = wait_for_reading(f"http://127.0.0.1:{http_port}", "m-0001", demo)
        children = psutil.Process(demo.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        for part in ("cloud serve", "sim meters", "edge run"):
            assert part in names, names
        if interrupt == "terminal-ctrl-c":
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
