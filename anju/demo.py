"""A whole building on loopback: broker, cloud, simulated meters and a gateway, as child processes.

Each part runs as its own process, as in production, so the demo also proves the parts start,
talk over real sockets and stop cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

log = logging.getLogger("anju.demo")

GATEWAY_ID = "demo-gw-1"
DEMO_METERS = 4
STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class DemoPorts:
    broker: int = 18830
    http: int = 8000
    modbus: int = 15020


@dataclass(frozen=True)
class DemoServers:
    """External servers to use instead of the embedded broker and the SQLite file."""

    mqtt_url: str | None = None
    mqtt_protocol: str = "5"
    database_url: str | None = None
    gateway_id: str = GATEWAY_ID


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process


def meter_id(n: int) -> str:
    return f"m-{n:04d}"


def gateway_config(
    gateway_id: str, data_dir: Path, mqtt_url: str, mqtt_protocol: str, ports: DemoPorts
) -> dict[str, object]:
    return {
        "gateway_id": gateway_id,
        "development": True,
        "mqtt": {"url": mqtt_url, "protocol": mqtt_protocol},
        "store": {"path": str(data_dir / "gateway.db")},
        "buses": [
            {
                "name": "bus-1",
                "tcp": f"127.0.0.1:{ports.modbus}",
                "poll_interval_s": 5,
                "devices": [
                    {"id": meter_id(i), "unit_id": i, "profile": "eastron-sdm120"}
                    for i in range(1, DEMO_METERS + 1)
                ],
            }
        ],
    }


class Demo:
    def __init__(self, data_dir: Path, ports: DemoPorts, servers: DemoServers) -> None:
        self.data_dir = data_dir.resolve()
        self.ports = ports
        self.servers = servers
        self.gateway_id = servers.gateway_id
        self.children: list[Child] = []
        self.mqtt_url = servers.mqtt_url or f"mqtt://127.0.0.1:{ports.broker}"
        # the embedded broker (amqtt) speaks MQTT 3.1.1 only
        self.mqtt_protocol = servers.mqtt_protocol if servers.mqtt_url else "3.1.1"
        self.env = {
            **os.environ,
            "ANJU_ENV": "development",
            "ANJU_SECRET_KEY": "demo-only-not-a-secret-0123456789abcdef",
            "ANJU_DATA_DIR": str(self.data_dir),
            "ANJU_DATABASE_URL": servers.database_url or f"sqlite:///{self.data_dir / 'cloud.db'}",
            "ANJU_MQTT_URL": self.mqtt_url,
            "ANJU_MQTT_PROTOCOL": self.mqtt_protocol,
            "ANJU_HTTP_PORT": str(ports.http),
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    async def _anju(self, *args: str) -> asyncio.subprocess.Process:
        # Own session: a terminal's Ctrl-C reaches only the demo, which then stops the parts
        # in order (gateway first, broker last) so none of them sees its peers vanish.
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "anju",
            *args,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )

    async def _once(self, *args: str) -> None:
        proc = await self._anju(*args)
        if await proc.wait() != 0:
            raise RuntimeError(f"`anju {' '.join(args)}` failed with exit code {proc.returncode}")

    async def _spawn(self, name: str, *args: str) -> None:
        self.children.append(Child(name, await self._anju(*args)))

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.data_dir / "gateway.yaml"
        config = gateway_config(
            self.gateway_id, self.data_dir, self.mqtt_url, self.mqtt_protocol, self.ports
        )
        config_path.write_text(yaml.safe_dump(config))
        await self._once("cloud", "migrate")
        await self._once("cloud", "seed-demo")
        await self._once(
            "cloud", "gateway", "add", self.gateway_id, "--name", "Demo building", "--no-credential"
        )
        if self.servers.mqtt_url is None:
            await self._spawn("broker", "broker", "--port", str(self.ports.broker))
        await self._spawn("cloud", "cloud", "serve", "--no-migrate")
        await self._spawn(
            "meters", "sim", "meters", "--count", str(DEMO_METERS), "--port", str(self.ports.modbus)
        )
        await self._spawn("gateway", "edge", "run", "--config", str(config_path))

    async def watch(self) -> str:
        """Return the name of the first child that exits by itself."""
        waits = {asyncio.ensure_future(c.process.wait()): c.name for c in self.children}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            return waits[done.pop()]
        finally:
            for fut in waits:
                fut.cancel()

    async def stop(self) -> None:
        for child in reversed(self.children):
            if child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.process.wait(), STOP_GRACE_S)
            except TimeoutError:
                log.warning("%s did not stop in %.0f s; killing it", child.name, STOP_GRACE_S)
                child.process.kill()
                await child.process.wait()

    def first_reading(self) -> dict[str, object] | None:
        url = f"{self.api}/api/v1/meters/{meter_id(1)}/readings?limit=1"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback URL we built
                page = json.load(resp)
        except (urllib.error.URLError, OSError, ValueError):
            return None
        items = page.get("items") or []
        return items[0] if items else None


def banner(demo: Demo) -> str:
    return "\n".join(
        [
            "Anju demo building is starting:",
            f"  MQTT broker     {demo.mqtt_url}"
            + ("" if demo.servers.mqtt_url else " (embedded amqtt)"),
            f"  Modbus meters   modbus-tcp://127.0.0.1:{demo.ports.modbus} "
            f"(unit ids 1..{DEMO_METERS})",
            f"  Cloud API       {demo.api}/docs",
            f"  Readings        {demo.api}/api/v1/meters/{meter_id(1)}/readings",
            "  Logins          demo-admin, demo-manager, demo-tenant ... / anju-demo-password",
            f"  Data folder     {demo.data_dir}",
            "Press Ctrl-C to stop everything.",
        ]
    )


async def run_demo(
    data_dir: Path, ports: DemoPorts, servers: DemoServers, *, check: bool, timeout_s: float
) -> int:
    demo = Demo(data_dir, ports, servers)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        print(banner(demo), flush=True)
        await demo.start()
        if check:
            return await _check(demo, stop, timeout_s)
        watcher = asyncio.ensure_future(demo.watch())
        stopper = asyncio.ensure_future(stop.wait())
        done, pending = await asyncio.wait({watcher, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for fut in pending:
            fut.cancel()
        if watcher in done:
            print(f"demo: {watcher.result()} exited unexpectedly; stopping", file=sys.stderr)
            return 1
        return 0
    finally:
        await demo.stop()
        print("demo: stopped", flush=True)


async def _check(demo: Demo, stop: asyncio.Event, timeout_s: float) -> int:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s and not stop.is_set():
        reading = await asyncio.to_thread(demo.first_reading)
        if reading is not None:
            took = time.monotonic() - started
            print(
                f"demo check: OK meter {meter_id(1)} {reading['point']}={reading['value']}"
                f" {reading['unit']} reached the API in {took:.1f} s",
                flush=True,
            )
            return 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    print(f"demo check: FAILED no reading reached the API within {timeout_s:.0f} s", flush=True)
    return 1
