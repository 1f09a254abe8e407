"""The installers' playbooks on a real Debian 12 root, not only their syntax.

Each playbook runs through the chroot connection against its own copy of a cached debootstrap
root, from a wheelhouse as an installer's offline install does; a second run must change
nothing; the units it installs must pass `systemd-analyze verify`; and the gateway it installed
must start from that root and store a reading of a simulated meter.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.billing.service.notify import Smtp
from cloud.jobs.billing import JobSettings
from tests import debian_root
from tests.pki import make_pki
from tests.test_ansible import ansible

WHEELHOUSE = "/opt/anju-wheelhouse"  # inside the root: a wheelhouse already on the host

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(2400),  # the first run debootstraps; later runs reuse the root
    pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap, chroot and mount need root"),
]


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cached dependencies' wheels and this checkout's anju wheel, in one folder."""
    if not debian_root.root_dir().exists() and not debian_root.mirror_answers():
        pytest.skip(f"debootstrap cannot reach the Debian mirror {debian_root.MIRROR}")
    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is missing: `make debootstrap` installs it")
    house = tmp_path_factory.mktemp("wheelhouse")
    for wheel in debian_root.cached_wheelhouse().glob("*.whl"):
        os.link(wheel, house / wheel.name)
    wheel = debian_root.anju_wheel(tmp_path_factory.mktemp("anju-wheel"))
    wheel.rename(house / wheel.name)
    debian_root.cached_root()
    return house


@pytest.fixture
def root(tmp_path: Path, wheelhouse: Path) -> Iterator[Path]:
    with debian_root.root_copy(tmp_path / "chroot") as merged:
        shutil.copytree(wheelhouse, merged / WHEELHOUSE.lstrip("/"))
        yield merged


def playbook(root: Path, playbook: str, group: str, hostvars: dict[str, object]) -> str:
    """Run `playbook` against `root` through the chroot connection; its output."""
    inventory = root.parent / f"{group}.json"
    hostvars = {
        "ansible_connection": "chroot",
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_pipelining": True,  # one chroot per task, not four
        "anju_wheelhouse_on_host": WHEELHOUSE,
        **hostvars,
    }
    hostvars["ansible_host"] = str(root)  # the chroot connection's folder
    inventory.write_text(json.dumps({group: {"hosts": {f"{group}-root": hostvars}}}))
    done = ansible("ansible-playbook", "-i", str(inventory), playbook, timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    return done.stdout


def changed(output: str) -> int:
    (count,) = re.findall(r"\bchanged=(\d+)", output.split("PLAY RECAP", 1)[1])
    return int(count)


def verify_units(root: Path, *units: str) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing: `make debootstrap` installs it"
    paths = [f"/etc/systemd/system/{unit}" for unit in units]
    done = subprocess.run(
        [analyze, "verify", f"--root={root}", "--man=no", *paths],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def mode_owner(root: Path, path: str) -> tuple[int, str, str]:
    """A file's permission bits, owner and group, named as the root's own tables name them."""
    info = (root / path).stat()
    return (
        stat.S_IMODE(info.st_mode),
        _name(root, "passwd", info.st_uid),
        _name(root, "group", info.st_gid),
    )


def _name(root: Path, table: str, number: int) -> str:
    for line in (root / "etc" / table).read_text().splitlines():
        fields = line.split(":")
        if int(fields[2]) == number:
            return fields[0]
    raise AssertionError(f"no {table} entry {number} in {root}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def outbox_kinds(database: Path) -> list[str]:
    if not database.exists():
        return []
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
        try:
            return [row[0] for row in db.execute("SELECT kind FROM outbox")]
        except sqlite3.OperationalError:  # the gateway has not made its tables yet
            return []


def wait_for(check: object, within_s: float, what: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)  # a separate process's file: there is no clock to drive
    proc.kill()
    out, _ = proc.communicate(timeout=10)
    raise AssertionError(f"{what} did not happen within {within_s} s:\n{out[-4000:]}")


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
    return out


def test_gateway_playbook_installs_a_gateway_that_reads_a_meter(root: Path) -> None:
    meter_port, dead_port = free_port(), free_port()
    hostvars = {
        "anju_gateway_id": "gw-root-proof",
        "anju_mqtt_password": secrets.token_urlsafe(24),
        # No broker answers: the reading must wait in the gateway's outbox.
        "anju_mqtt_url": f"mqtt://127.0.0.1:{dead_port}",
        "anju_buses": [
            {
                "name": "meters-tcp",
                "tcp": f"127.0.0.1:{meter_port}",
                "poll_interval_s": 1,
                "devices": [{"id": "m-0101", "unit_id": 1, "profile": "eastron-sdm120"}],
            }
        ],
    }
    first = playbook(root, "gateway.yml", "gateways", hostvars)
    assert changed(first) > 0

    assert mode_owner(root, "etc/anju/gateway.yaml") == (0o640, "root", "anju")
    assert mode_owner(root, "var/lib/anju") == (0o750, "anju", "anju")
    assert mode_owner(root, "etc/systemd/system/anju-gateway.service") == (0o644, "root", "root")
    wants = root / "etc/systemd/system/multi-user.target.wants/anju-gateway.service"
    assert wants.is_symlink()  # enabled: it starts at the next boot
    verify_units(root, "anju-gateway.service")

    meter = subprocess.Popen(
        [sys.executable, "-m", "anju", "sim", "meters", "--port", str(meter_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    gateway = subprocess.Popen(
        [shutil.which("chroot") or "/usr/sbin/chroot", "--userspec=anju:anju", str(root),
         "/opt/anju/venv/bin/anju", "edge", "run", "--config", "/etc/anju/gateway.yaml"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/opt/anju", "LANG": "C.UTF-8"},
    )  # fmt: skip
    try:
        database = root / "var/lib/anju/gateway.db"
        wait_for(lambda: "reading" in outbox_kinds(database), 90, "a stored reading", gateway)
    finally:
        said = stop(gateway)
        stop(meter)
    assert gateway.returncode == 0, said[-4000:]

    again = playbook(root, "gateway.yml", "gateways", hostvars)
    assert changed(again) == 0, again[-6000:]


def test_cloud_playbook_lays_down_broker_database_and_key_files(root: Path) -> None:
    (root / "etc/ssl/anju").mkdir(parents=True)
    pki = make_pki(root / "etc/ssl/anju")  # the operator's certificate, on the host
    certificate, key = (f"/{path.relative_to(root)}" for path in (pki.cert_file, pki.key_file))
    hostvars = {
        "anju_tls_certificate": certificate,
        "anju_tls_certificate_key": key,
        "anju_mosquitto_certfile": certificate,
        "anju_mosquitto_keyfile": key,
        "anju_secret_key": secrets.token_hex(32),
        "anju_mqtt_service_password": secrets.token_urlsafe(24),
        "anju_database_url": "sqlite:////var/lib/anju/anju.db",
        "anju_pgbackrest": True,  # PostgreSQL's archiving and backups, on this host
        "anju_pgbackrest_cipher_pass": secrets.token_urlsafe(24),
        "anju_smtp_host": "smtp.example.com",
        "anju_smtp_username": "alarms",
        "anju_smtp_password": "from-the-vault",
    }
    first = playbook(root, "cloud.yml", "cloud", hostvars)
    assert changed(first) > 0
    assert "set anju_command_public_key for the gateways: " in first

    env = root / "etc/anju/anju.env"
    assert mode_owner(root, "etc/anju/anju.env") == (0o640, "root", "anju")
    env = (root / "etc/anju/anju.env").read_text().splitlines()
    assert "ANJU_MQTT_URL=mqtt://127.0.0.1:1884" in env
    settings = JobSettings(**{k.removeprefix("ANJU_").lower(): v
                              for k, _, v in (line.partition("=") for line in env)
                              if k.startswith(("ANJU_JOBS_", "ANJU_SMTP_"))})  # fmt: skip
    assert settings.jobs_in_process  # billing, late fees and alarms run in production
    assert settings.smtp() == Smtp("smtp.example.com", 587, "anju@localhost", "alarms",
                                   "from-the-vault", True)  # fmt: skip
    assert mode_owner(root, "var/lib/anju/command-key.pem") == (0o600, "anju", "anju")
    # The service (User=anju) writes its SQLite database: the play's migration must not own it.
    assert mode_owner(root, "var/lib/anju/anju.db")[1:] == ("anju", "anju")

    assert mode_owner(root, "etc/mosquitto/conf.d/anju.conf") == (0o644, "root", "root")
    assert "allow_anonymous false" in (root / "etc/mosquitto/conf.d/anju.conf").read_text()
    for name in ("anju.passwd", "anju.acl"):
        assert mode_owner(root, f"etc/mosquitto/{name}") == (0o640, "root", "mosquitto")

    pgbackrest = root / "etc/pgbackrest/pgbackrest.conf"
    assert mode_owner(root, "etc/pgbackrest/pgbackrest.conf") == (0o640, "postgres", "postgres")
    assert mode_owner(root, "etc/nginx/sites-available/anju.conf") == (0o644, "root", "root")
    assert (root / "etc/nginx/sites-enabled/anju.conf").is_symlink()
    assert not (root / "etc/nginx/sites-enabled/default").exists()  # it would answer plain HTTP
    nginx = subprocess.run(
        ["chroot", str(root), "/usr/sbin/nginx", "-t"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert nginx.returncode == 0, nginx.stderr

    pgbackrest = (root / "etc/pgbackrest/pgbackrest.conf").read_text().splitlines()
    assert "repo1-cipher-type=aes-256-cbc" in pgbackrest
    archive = root / "etc/postgresql/15/main/conf.d/anju-archive.conf"
    archive = "etc/postgresql/15/main/conf.d/anju-archive.conf"
    assert mode_owner(root, archive) == (0o644, "postgres", "postgres")
    assert "archive_mode = on" in (root / archive).read_text().splitlines()

    units = ["anju-cloud.service", "anju-ingest@.service", "anju-broker-auth.service",
             "anju-broker-auth.timer", "anju-pgbackrest@.service", "anju-pgbackrest-full.timer",
             "anju-pgbackrest-incr.timer", "anju-backup.service", "anju-backup.timer"]  # fmt: skip
    for name in units:
        assert mode_owner(root, f"etc/systemd/system/{name}") == (0o644, "root", "root")
    for wanted in ("multi-user.target.wants/anju-cloud.service",
                   "multi-user.target.wants/nginx.service",
                   "timers.target.wants/anju-broker-auth.timer",
                   "timers.target.wants/anju-pgbackrest-full.timer"):  # fmt: skip
        assert (root / "etc/systemd/system" / wanted).is_symlink(), wanted
    verify_units(root, *units)

    again = playbook(root, "cloud.yml", "cloud", hostvars)
    assert changed(again) == 0, again[-6000:]
