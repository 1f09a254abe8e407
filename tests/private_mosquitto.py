"""A private Mosquitto for one test: its own config, ports and files; terminated at the end.
With password and ACL files it runs the cloud role's configuration, so tests of broker
authentication check what is deployed.

The shared Mosquitto the suite may use (ANJU_TEST_MQTT_URL) must stay anonymous, so tests of
broker authentication start their own. The binary is on every machine that runs the suite (CI
installs it): a skip here means the machine is missing it, which is a defect to fix there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pytest

from tests.conftest import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PRESENT = Path(MOSQUITTO).exists()
ANSIBLE_ROLE = Path(__file__).resolve().parents[1] / "ansible" / "roles" / "anju_cloud"
ROLE_TEMPLATE = ANSIBLE_ROLE / "templates" / "anju-mosquitto.conf.j2"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


@dataclass
class PrivateMosquitto:
    url: str  # the gateways' listener
    services_url: str  # the cloud services' (the same one for an anonymous broker)
    process: asyncio.subprocess.Process
    log: Path

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its password and ACL files again."""
        self.process.send_signal(signal.SIGHUP)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def write_config(
    tmp_path: Path,
    ports: tuple[int, int],
    password_file: Path | None,
    acl_file: Path | None,
    tls: tuple[Path, Path] | None = None,
) -> Path:
    """With the files: the cloud role's configuration (its template rendered for loopback),
    gateways on the first port and services on the second; anonymous otherwise. TLS with
    (cert, key)."""
    conf = tmp_path / "mosquitto.conf"
    cert, key = tls or ("", "")
    if password_file is None or acl_file is None:
        lines = [f"listener {ports[0]} 127.0.0.1", "allow_anonymous true"]
        lines += [f"certfile {cert}", f"keyfile {key}"] if tls else []
    else:
        template = jinja2.Template(ROLE_TEMPLATE.read_text(), undefined=jinja2.StrictUndefined)
        role = template.render(
            anju_mosquitto_password_file=password_file,
            anju_mosquitto_acl_file=acl_file,
            anju_mosquitto_port=ports[0],
            anju_mosquitto_bind="127.0.0.1",
            anju_mosquitto_certfile=cert,
            anju_mosquitto_keyfile=key,
            anju_mosquitto_services_port=ports[1],
            anju_mosquitto_services_bind="127.0.0.1",
        )
        lines = role.splitlines()
    lines += [
        "persistence false",
        f"log_dest file {tmp_path / 'mosquitto.log'}",
        "log_type all",
    ]
    if os.geteuid() == 0:
        lines.append("user root")  # or it drops to `mosquitto`, who cannot read tmp_path
    conf.write_text("\n".join(lines) + "\n")
    return conf


@asynccontextmanager
async def private_mosquitto(
    tmp_path: Path,
    *,
    password_file: Path | None = None,
    acl_file: Path | None = None,
    tls: tuple[Path, Path] | None = None,
) -> AsyncIterator[PrivateMosquitto]:
    if not MOSQUITTO_PRESENT:
        pytest.skip(f"{MOSQUITTO} is missing: a machine defect (CI and dev boxes install it)")
    port, services_port = free_port(), free_port()
    conf = write_config(tmp_path, (port, services_port), password_file, acl_file, tls)
    process = await asyncio.create_subprocess_exec(
        MOSQUITTO, "-c", str(conf), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    scheme = "mqtt" if tls is None else "mqtts"
    url = f"{scheme}://127.0.0.1:{port}"
    services_url = url if password_file is None else f"mqtt://127.0.0.1:{services_port}"
    broker = PrivateMosquitto(url, services_url, process, tmp_path / "mosquitto.log")
    try:
        await _wait_listening(port, broker)
        yield broker
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _wait_listening(port: int, broker: PrivateMosquitto) -> None:
    async with asyncio.timeout(START_TIMEOUT_S):
        while True:
            if broker.process.returncode is not None:
                raise AssertionError(
                    f"mosquitto exited ({broker.process.returncode}):\n{broker.log_text()}"
                )
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
