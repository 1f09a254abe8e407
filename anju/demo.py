"""A whole building on loopback: broker, cloud, simulated meters and a gateway, as child processes.

Each part runs as its own process, as in production, so the demo also proves the parts start,
talk over real sockets and stop cleanly.
"""

from __future__ import annotations

import asyncio
import base64
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from anju import demo_door
from cloud.db import make_engine
from cloud.face.enrollment import ACCESS_STATUSES
from cloud.models import Lease, Meter, Unit
from cloud.security.broker_credentials import new_secret
from cloud.seed import DEMO_PASSWORD
from protocols.errors import AnjuError

log = logging.getLogger("anju.demo")

GATEWAY_ID = "demo-gw-1"
DEMO_METERS = 4
SIM_PROFILE = "eastron-sdm120"
DEMO_LOGIN = "demo-manager"
SERVICE_ACCOUNT = "demo-cloud"  # the cloud's (ingest's) broker login
STOP_GRACE_S = 10.0
DECISIONS = ("access.granted", "access.refused")
CLOUD_START_S = 60.0


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


def seeded_meters(database_url: str, count: int) -> tuple[list[str], int | None]:
    """The first electricity submeters of the seeded portfolio (the ones the simulator plays),
    and the property of the first: the demo gateway is placed there."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            query = select(Meter.code, Meter.property_id).where(Meter.profile == SIM_PROFILE)
            rows = conn.execute(query.order_by(Meter.code).limit(count)).all()
    finally:
        engine.dispose()
    return [r.code for r in rows], (rows[0].property_id if rows else None)


def demo_tenant(database_url: str, meter_id: str) -> tuple[int, int]:
    """(tenant, building): a tenant with a signed or active lease in the first meter's
    building, the one the demo door lets in."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            building = conn.execute(select(Meter.building_id).where(Meter.code == meter_id))
            building_id = building.scalar_one()
            tenant = conn.execute(
                select(Lease.primary_tenant_id)
                .join(Unit, Unit.id == Lease.unit_id)
                .where(Unit.building_id == building_id, Lease.status.in_(ACCESS_STATUSES))
                .order_by(Lease.id)
                .limit(1)
            ).scalar_one_or_none()
    finally:
        engine.dispose()
    if tenant is None:
        raise AnjuError(f"the demo portfolio has no leased unit in building {building_id}")
    return tenant, building_id


def gateway_config(
    gateway_id: str,
    *,
    data_dir: Path,
    mqtt_url: str,
    mqtt_protocol: str,
    ports: DemoPorts,
    meter_ids: list[str],
    password: str,
    doors: list[dict[str, object]] | None = None,
    command_key: str | None = None,
) -> dict[str, object]:
    """`command_key`: the cloud's public key, which commands and access lists must verify by."""
    return {
        "gateway_id": gateway_id,
        "development": True,
        **({"commands": {"public_key": command_key}} if command_key else {}),
        "mqtt": {
            "url": mqtt_url,
            "protocol": mqtt_protocol,
            "username": gateway_id,
            "password": password,
        },
        "store": {"path": str(data_dir / "gateway.db")},
        "buses": [
            {
                "name": "bus-1",
                "tcp": f"127.0.0.1:{ports.modbus}",
                "poll_interval_s": 5,
                "devices": [
                    {"id": mid, "unit_id": i, "profile": SIM_PROFILE}
                    for i, mid in enumerate(meter_ids, start=1)
                ],
            }
        ],
        "doors": doors or [],
    }


class Demo:
    def __init__(self, data_dir: Path, ports: DemoPorts, servers: DemoServers) -> None:
        self.data_dir = data_dir.resolve()
        self.ports = ports
        self.servers = servers
        self.gateway_id = servers.gateway_id
        self.children: list[Child] = []
        self.meter_ids: list[str] = []
        self.tenant_id: int | None = None
        self.property_id: int | None = None
        self.building_id: int | None = None
        self.door_id: int | None = None  # the cloud's record of the demo door
        self._token: str | None = None
        self.mqtt_url = servers.mqtt_url or f"mqtt://127.0.0.1:{ports.broker}"
        # the embedded broker (amqtt) speaks MQTT 3.1.1 only
        self.mqtt_protocol = servers.mqtt_protocol if servers.mqtt_url else "3.1.1"
        # Real logins, as in production: the embedded broker checks them against the registry
        # (an external broker without auth, like CI's Mosquitto, ignores them).
        self.gateway_secret = new_secret()
        self.service_secret = new_secret()
        self.env = {
            **os.environ,
            "ANJU_ENV": "development",
            "ANJU_SECRET_KEY": "demo-only-not-a-secret-0123456789abcdef",
            "ANJU_DATA_DIR": str(self.data_dir),
            "ANJU_COMMAND_KEY_FILE": str(self.data_dir / "command-key.pem"),
            "ANJU_DATABASE_URL": servers.database_url or f"sqlite:///{self.data_dir / 'cloud.db'}",
            "ANJU_MQTT_URL": self.mqtt_url,
            "ANJU_MQTT_PROTOCOL": self.mqtt_protocol,
            "ANJU_MQTT_USERNAME": SERVICE_ACCOUNT,
            "ANJU_MQTT_PASSWORD": self.service_secret,
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

    async def _once(self, *args: str, stdin: str | None = None) -> None:
        """Run one command to its end (a secret, if any, on its stdin) and show what it printed."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "anju", *args, env=self.env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await proc.communicate(f"{stdin}\n".encode() if stdin is not None else b"")
        text = output.decode(errors="replace").strip()
        if proc.returncode == 0:
            print(text, flush=True)
            return
        raise AnjuError(f"`anju {' '.join(args)}` failed ({proc.returncode}): {text}")

    async def _spawn(self, name: str, *args: str) -> None:
        self.children.append(Child(name, await self._anju(*args)))

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self._once("cloud", "migrate")
        await self._once("cloud", "seed-demo")
        self.meter_ids, self.property_id = await asyncio.to_thread(
            seeded_meters, self.env["ANJU_DATABASE_URL"], DEMO_METERS
        )
        if not self.meter_ids:
            raise AnjuError(f"the demo portfolio has no {SIM_PROFILE} meters to simulate")
        config_path = self.data_dir / "gateway.yaml"
        photos = await asyncio.to_thread(self._door_assets)
        config = gateway_config(
            self.gateway_id, data_dir=self.data_dir, mqtt_url=self.mqtt_url,
            mqtt_protocol=self.mqtt_protocol, ports=self.ports, meter_ids=self.meter_ids,
            password=self.gateway_secret, doors=[demo_door.door_config(self.data_dir)],
            command_key=await asyncio.to_thread(self._command_key),
        )  # fmt: skip
        config_path.write_text(yaml.safe_dump(config))
        config_path.chmod(0o600)  # it holds the gateway's password
        await self._once(
            "cloud", "gateway", "add", self.gateway_id, "--name", "Demo building",
            "--property", str(self.property_id), "--credential-stdin", stdin=self.gateway_secret,
        )  # fmt: skip
        await self._once(
            "cloud", "gateway", "meters", self.gateway_id, "--config", str(config_path),
            *(arg for mid in self.meter_ids for arg in ("--bind", mid)),
        )  # fmt: skip
        await self._once(
            "cloud", "service-account", "add", SERVICE_ACCOUNT, "--credential-stdin",
            stdin=self.service_secret,
        )  # fmt: skip
        if self.servers.mqtt_url is None:
            await self._spawn(
                "broker", "broker", "--port", str(self.ports.broker),
                "--database-url", self.env["ANJU_DATABASE_URL"],
            )  # fmt: skip
        await self._spawn("cloud", "cloud", "serve", "--no-migrate")
        await self._enrol_tenant(photos / demo_door.TENANT_PHOTO)
        await asyncio.to_thread(self._place_door)
        await self._spawn(
            "meters",
            "sim",
            "meters",
            "--count",
            str(len(self.meter_ids)),
            "--port",
            str(self.ports.modbus),
        )
        await self._spawn("gateway", "edge", "run", "--config", str(config_path))

    def _command_key(self) -> str:
        """The public half of the cloud's command key (created on the first run): the gateway
        verifies the access lists the cloud signs with it."""
        from cloud.commands.keys import create_key, read_key  # noqa: PLC0415
        from protocols.mqtt.commands import public_key_text  # noqa: PLC0415

        path = Path(self.env["ANJU_COMMAND_KEY_FILE"])
        key = read_key(path) if path.exists() else create_key(path)
        return public_key_text(key.public_key())

    def _door_assets(self) -> Path:
        """Face models, the photos, the camera's frames and the lock's key; the photos' folder."""
        from anju.models.fetch import fetch  # noqa: PLC0415 - the face stack only here
        from protocols.face.models import default_models_dir  # noqa: PLC0415

        fetch(default_models_dir(os.environ, Path.home()))
        photos = demo_door.fetch_photos()
        camera = self.data_dir / "camera"
        if not camera.is_dir():
            demo_door.write_camera(camera, photos)
        key = self.data_dir / "lock.key"
        if not key.exists():
            demo_door.write_lock_key(key)
        return photos

    async def _enrol_tenant(self, photo: Path) -> None:
        """Once the cloud answers: enrol the demo tenant's face (consent recorded). Their lease
        gives them the building's entrance; the face reaches the gateway in its access list."""
        tenant_id, building_id = await asyncio.to_thread(
            demo_tenant, self.env["ANJU_DATABASE_URL"], self.meter_ids[0]
        )
        started, cloud = time.monotonic(), self.children[-1].process
        while not await asyncio.to_thread(self._sign_in):
            if time.monotonic() - started > CLOUD_START_S or cloud.returncode is not None:
                raise AnjuError(f"the cloud did not answer at {self.api} in {CLOUD_START_S:.0f} s")
            await asyncio.sleep(0.25)
        consent = {
            "given": True,
            "method": "demo",
            "at": datetime.now(UTC).isoformat(),
            "note": "the demo tenant",
        }
        image = await asyncio.to_thread(photo.read_bytes)
        body = {"consent": consent, "photos": [base64.b64encode(image).decode()]}
        await asyncio.to_thread(self._call, f"/api/v1/tenants/{tenant_id}/face", body, "PUT")
        self.tenant_id, self.building_id = tenant_id, building_id
        print(f"demo: tenant {tenant_id} enrolled (face)", flush=True)

    def _place_door(self) -> None:
        """Record the demo door in the cloud as the tenant's building entrance on the demo
        gateway (once: a second run finds it): the cloud then compiles the gateway's access
        list from the lease and publishes it on `down/access`."""
        found = self._call(f"/api/v1/doors?gateway_id={self.gateway_id}")["items"]
        door = next((d for d in found if d["code"] == demo_door.DOOR_ID), None)
        if door is None:
            place = {
                "gateway_id": self.gateway_id, "code": demo_door.DOOR_ID,
                "name": "Front entrance", "scope": "building",
                "property_id": self.property_id, "building_id": self.building_id,
            }  # fmt: skip
            door = self._call("/api/v1/doors", place)
        self.door_id = door["id"]
        print(
            f"demo: door {demo_door.DOOR_ID} (#{self.door_id}) opens for tenant"
            f" {self.tenant_id} by their lease",
            flush=True,
        )

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

    def _call(
        self, path: str, body: dict[str, Any] | None = None, method: str | None = None
    ) -> Any:
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - loopback URL we built
            self.api + path, data=data, headers=headers, method=method
        )
        with urllib.request.urlopen(request, timeout=2) as resp:  # noqa: S310 - as above
            return json.load(resp)

    def _sign_in(self) -> bool:
        """Sign in as the demo manager (once); False while the cloud does not answer."""
        try:
            if self._token is None:
                login = {"username": DEMO_LOGIN, "password": DEMO_PASSWORD}
                self._token = self._call("/api/v1/auth/login", login)["token"]
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return True

    def first_reading(self) -> dict[str, object] | None:
        """A reading of the first meter, once one reached the API."""
        try:
            if not self._sign_in():
                return None
            page = self._call(f"/api/v1/meters/{self.meter_ids[0]}/readings?limit=1")
        except (urllib.error.URLError, OSError, ValueError):
            return None
        items = page.get("items") or []
        return items[0] if items else None

    def door_decisions(self) -> list[dict[str, Any]]:
        """The door's decisions that reached the API, oldest first."""
        path = f"/api/v1/doors/{self.door_id}/events?limit=50"
        try:
            if not self._sign_in():
                return []
            page = self._call(path)
        except (urllib.error.URLError, OSError, ValueError):
            return []
        events = [e["data"] | {"type": e["type"]} for e in page.get("items") or []]
        return [e for e in reversed(events) if e["type"] in DECISIONS]


def banner(demo: Demo) -> str:
    return "\n".join(
        [
            "Anju demo building is starting:",
            f"  MQTT broker     {demo.mqtt_url}"
            + ("" if demo.servers.mqtt_url else " (embedded amqtt, logins from the registry)"),
            f"  Modbus meters   modbus-tcp://127.0.0.1:{demo.ports.modbus} "
            f"({DEMO_METERS} x {SIM_PROFILE})",
            f"  Web console     {demo.api}/ (sign in as {DEMO_LOGIN} or demo-admin)",
            f"  Cloud API       {demo.api}/docs",
            f"  Readings        {demo.api}/api/v1/meters/<meter id>/readings"
            " (the meter ids are in the data folder's gateway.yaml)",
            f"  Door            {demo_door.DOOR_ID}: emulated BLE lock {demo_door.LOCK_ADDRESS},"
            " camera on a folder of images (the demo tenant, then a stranger); it decides by"
            " the access list the cloud compiles from the tenant's lease",
            f"  Door events     {demo.api}/api/v1/doors?gateway_id={demo.gateway_id}"
            " (then /api/v1/doors/<id>/events)",
            f"  Logins          demo-<role> (e.g. {DEMO_LOGIN}), password {DEMO_PASSWORD}",
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
    reading: dict[str, object] | None = None
    door: str | None = None
    while time.monotonic() - started < timeout_s and not stop.is_set():
        if reading is None and (reading := await asyncio.to_thread(demo.first_reading)):
            print(
                f"demo check: OK meter {demo.meter_ids[0]} {reading['point']}={reading['value']}"
                f" {reading['unit']} reached the API in {time.monotonic() - started:.1f} s",
                flush=True,
            )
        if door is None:
            door = door_verdicts(await asyncio.to_thread(demo.door_decisions), demo.tenant_id)
            if door is not None:
                print(f"demo check: OK door {door}, through the API", flush=True)
        if reading is not None and door is not None:
            return 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    missing = [what for what, got in (("reading", reading), ("door decisions", door)) if not got]
    print(f"demo check: FAILED no {' and no '.join(missing)} within {timeout_s:.0f} s", flush=True)
    return 1


def door_verdicts(decisions: list[dict[str, Any]], tenant_id: int | None) -> str | None:
    """What the check wants to see, or None until it is there: the tenant let in by their
    lease with the lock acknowledging, and an unknown face refused."""
    granted = any(
        d["type"] == "access.granted"
        and d.get("subject") == f"tenant:{tenant_id}"
        and "lock_error" not in d
        for d in decisions
    )
    refused = any(
        d["type"] == "access.refused" and d.get("reason") == "unknown_credential" for d in decisions
    )
    if not (granted and refused):
        return None
    return f"opened for tenant:{tenant_id} by their lease (lock acknowledged), refused a stranger"
