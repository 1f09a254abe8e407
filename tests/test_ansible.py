"""Installers' playbooks parse; the gateway role renders a config the gateway accepts."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.commands.keys import read_key
from edge.config import load_config
from protocols.mqtt.commands import public_key_text

ANSIBLE = Path(__file__).resolve().parents[1] / "ansible"
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.timeout(120)


def ansible(tool: str, *args: str, timeout: float = 100) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": "/tmp/anju-ansible-tmp",
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(
        [str(BIN / tool), *args],
        cwd=ANSIBLE,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def role_tasks(
    tmp_path: Path, host: str, role: str, tasks_from: str, extra: dict[str, object]
) -> subprocess.CompletedProcess[str]:
    """Run one task file of a role for an example host, locally, touching no services."""
    extra = {"anju_manage_services": False, "ansible_python_interpreter": sys.executable, **extra}
    play = tmp_path / f"{role}-{tasks_from}.yml"
    play.write_text(
        f"- hosts: {host}\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        f"    - ansible.builtin.include_role: {{name: {role}, tasks_from: {tasks_from}}}\n"
    )
    return ansible("ansible-playbook", str(play), "-e", json.dumps(extra))


def render_gateway_config(
    tmp_path: Path, extra: dict[str, object]
) -> subprocess.CompletedProcess[str]:
    """Run only the role's configuration tasks for the example host, locally."""
    return role_tasks(tmp_path, "bldg-a-gw-1", "anju_gateway", "config", extra)


@pytest.mark.parametrize("playbook", ["gateway.yml", "cloud.yml", "standby.yml"])
def test_playbook_syntax(playbook: str) -> None:
    result = ansible("ansible-playbook", "--syntax-check", playbook)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gateway_role_renders_a_valid_config(tmp_path: Path) -> None:
    extra = {
        "vault_gateway_passwords": {"bldg-a-gw-1": "s3cret-from-the-vault-0123456789"},
        "anju_config_dir": str(tmp_path),
        "anju_user": "root",
        "anju_manage_services": False,
        "ansible_python_interpreter": sys.executable,
    }
    result = render_gateway_config(tmp_path, extra)
    assert result.returncode == 0, result.stdout + result.stderr
    config = load_config(tmp_path / "gateway.yaml")
    assert config.gateway_id == "bldg-a-gw-1"
    assert config.mqtt.password == "s3cret-from-the-vault-0123456789"
    assert config.mqtt.username == "bldg-a-gw-1"
    assert config.mqtt.protocol == "5"
    assert [d.id for d in config.buses[0].devices] == ["m-0101", "m-0102"]
    assert str(config.store.path) == "/var/lib/anju/gateway.db"
    assert config.commands.public_key is None  # no key: every command refused


def test_gateway_role_configures_the_command_key(tmp_path: Path) -> None:
    public = public_key_text(Ed25519PrivateKey.generate().public_key())
    extra = {
        "vault_gateway_passwords": {"bldg-a-gw-1": "s3cret-from-the-vault-0123456789"},
        "anju_command_public_key": public,
        "anju_config_dir": str(tmp_path),
        "anju_user": "root",
        "anju_manage_services": False,
        "ansible_python_interpreter": sys.executable,
    }
    result = render_gateway_config(tmp_path, extra)
    assert result.returncode == 0, result.stdout + result.stderr
    assert load_config(tmp_path / "gateway.yaml").commands.public_key == public


def test_gateway_role_refuses_a_host_without_credentials(tmp_path: Path) -> None:
    extra = {
        "anju_config_dir": str(tmp_path),
        "anju_user": "root",
        "anju_mqtt_password": "",
        "anju_manage_services": False,
        "ansible_python_interpreter": sys.executable,
    }
    result = render_gateway_config(tmp_path, extra)
    assert result.returncode != 0
    assert "set anju_gateway_id and anju_mqtt_password" in result.stdout
    assert not (tmp_path / "gateway.yaml").exists()


def test_cloud_role_gives_mosquitto_no_anonymous_clients_and_the_registry_files(
    tmp_path: Path,
) -> None:
    """Only the file tasks run here (no systemd, no database): the conf and the empty files."""
    (tmp_path / "conf.d").mkdir()
    extra = {
        "anju_mosquitto_dir": str(tmp_path),
        "anju_mosquitto_group": "root",
        "anju_mosquitto_certfile": "/etc/ssl/anju/mqtt.pem",
        "anju_mosquitto_keyfile": "/etc/ssl/anju/mqtt.key",
        "anju_manage_services": False,
        "ansible_python_interpreter": sys.executable,
    }
    result = role_tasks(tmp_path, "cloud-1", "anju_cloud", "broker", extra)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (tmp_path / "conf.d" / "anju.conf").read_text().splitlines()
    assert "allow_anonymous false" in lines
    assert "set_tcp_nodelay true" in lines
    assert f"password_file {tmp_path}/anju.passwd" in lines
    assert f"acl_file {tmp_path}/anju.acl" in lines
    # Gateways' listener: each login's client id is its username, and TLS. The services'
    # (several processes under one login) only on this host, after it.
    gateways, services = lines.index("listener 8883"), lines.index("listener 1884 127.0.0.1")
    assert gateways < lines.index("use_username_as_clientid true") < services
    assert gateways < lines.index("certfile /etc/ssl/anju/mqtt.pem") < services
    for name in ("anju.passwd", "anju.acl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o640


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming the service user through su needs root")
def test_cloud_role_makes_the_command_key_once_and_prints_its_public_half(tmp_path: Path) -> None:
    """The key tasks as an installer runs them, with this machine's user as the service user."""
    home, config, data = tmp_path / "opt", tmp_path / "etc", tmp_path / "data"
    (home / "venv" / "bin").mkdir(parents=True)
    (home / "venv" / "bin" / "anju").symlink_to(BIN / "anju")
    config.mkdir()
    secret = secrets.token_hex(32)
    env = {"ANJU_ENV": "production", "ANJU_SECRET_KEY": secret, "ANJU_DATA_DIR": data}
    (config / "anju.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    play = tmp_path / "keys.yml"
    play.write_text(
        "- hosts: cloud-1\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - ansible.builtin.include_role: {name: anju_cloud, tasks_from: command_key}\n"
    )
    extra = {
        "anju_home": str(home),
        "anju_config_dir": str(config),
        "anju_data_dir": str(data),
        "anju_user": "root",
        "ansible_become_method": "su",
        "ansible_python_interpreter": sys.executable,
    }
    printed, pems = [], []
    for _ in range(2):  # the second run must keep the key
        result = ansible("ansible-playbook", str(play), "-e", json.dumps(extra))
        assert result.returncode == 0, result.stdout + result.stderr
        said = [line for line in result.stdout.splitlines() if "anju_command_public_key" in line]
        assert len(said) == 1, result.stdout
        printed.append(said[0].split("for the gateways: ")[1].rstrip('"'))
        pems.append((data / "command-key.pem").read_bytes())
    assert pems[0] == pems[1]
    assert (data / "command-key.pem").stat().st_mode & 0o777 == 0o600
    key = read_key(data / "command-key.pem")
    assert printed == [public_key_text(key.public_key())] * 2


def test_cloud_role_sends_backups_off_site_to_s3_encrypted(tmp_path: Path) -> None:
    """The second pgBackRest repository (the drill in tests/cloud/backup runs the first)."""
    conf = tmp_path / "pgbackrest" / "pgbackrest.conf"
    extra = {
        "anju_pg_user": "root",
        "anju_pg_conf_dir": str(tmp_path),
        "anju_pgbackrest_conf": str(conf),
        "anju_pgbackrest_repo_path": str(tmp_path / "repo"),
        "anju_pgbackrest_log_path": str(tmp_path / "log"),
        "anju_pgbackrest_cipher_pass": "from-the-vault-0123456789",
        "anju_pgbackrest_s3_bucket": "anju-backups",
        "anju_pgbackrest_s3_endpoint": "minio.example.invalid",
        "anju_pgbackrest_s3_region": "cn-north-1",
        "anju_pgbackrest_s3_key": "AKEXAMPLE",
        "anju_pgbackrest_s3_key_secret": "from-the-vault-too",
        "anju_pgbackrest_s3_uri_style": "path",
    }
    result = role_tasks(tmp_path, "cloud-1", "anju_cloud", "pgbackrest_config", extra)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = conf.read_text().splitlines()
    for line in ("repo2-type=s3", "repo2-s3-bucket=anju-backups", "repo2-s3-uri-style=path",
                 "repo2-retention-full=4", "repo2-cipher-type=aes-256-cbc",
                 "repo1-cipher-pass=from-the-vault-0123456789", "pg1-port=5432"):  # fmt: skip
        assert line in lines
    assert conf.stat().st_mode & 0o777 == 0o640
    archive = (tmp_path / "conf.d" / "anju-archive.conf").read_text()
    assert f"--config={conf} --stanza=anju archive-push %p" in archive


@pytest.mark.parametrize(
    ("template", "default"),
    [("anju-pgbackrest-full.timer", "anju_pgbackrest_full_on"),
     ("anju-pgbackrest-incr.timer", "anju_pgbackrest_incr_on"),
     ("anju-backup.timer", "anju_sqlite_backup_on")],
)  # fmt: skip
def test_backup_timers_name_valid_calendar_events(template: str, default: str) -> None:
    """systemd refuses a bad OnCalendar= silently at boot; check the defaults parse."""
    defaults = (ANSIBLE / "roles" / "anju_cloud" / "defaults" / "main.yml").read_text()
    (line,) = [x for x in defaults.splitlines() if x.startswith(f"{default}:")]
    when = line.split(":", 1)[1].split("#")[0].strip().strip('"')
    text = (ANSIBLE / "roles" / "anju_cloud" / "templates" / f"{template}.j2").read_text()
    assert f"OnCalendar={{{{ {default} }}}}" in text
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is missing")
    done = subprocess.run([analyze, "calendar", when], capture_output=True, text=True,
                          timeout=10, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


def installed_venv(home: Path, version: str) -> Path:
    """A venv in which `anju` `version` is installed as pip records it (its dist-info)."""
    venv = home / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60
    )
    site = next(venv.glob("lib/python3*/site-packages"))
    info = site / f"anju-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: anju\nVersion: {version}\n")
    return info


def test_update_lists_its_batches_and_runs_only_with_its_tag() -> None:
    tagged = ansible("ansible-playbook", "--list-tasks", "--tags", "update", "gateway.yml")
    assert tagged.returncode == 0, tagged.stdout + tagged.stderr
    assert "Install anju[edge]==" in tagged.stdout
    assert "Gateway configuration" not in tagged.stdout
    plain = ansible("ansible-playbook", "--list-tasks", "gateway.yml")
    assert "Install anju[edge]==" not in plain.stdout  # `never`: a provisioning run skips it


def test_a_failed_update_rolls_back_and_stops(tmp_path: Path) -> None:
    home = tmp_path / "opt-anju"
    info = installed_venv(home, "0.1.0")
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()  # holds no 9.9.9: the install fails, offline
    extra = {"anju_home": str(home), "anju_wheelhouse": str(wheelhouse)}

    same = role_tasks(tmp_path, "bldg-a-gw-1", "anju_gateway", "update",
                      {**extra, "anju_version": "0.1.0"})  # fmt: skip
    assert same.returncode == 0, same.stdout + same.stderr
    assert "changed=0" in same.stdout
    assert not (home / "venv.previous").exists()

    failed = role_tasks(tmp_path, "bldg-a-gw-1", "anju_gateway", "update",
                        {**extra, "anju_version": "9.9.9"})  # fmt: skip
    assert failed.returncode != 0
    assert "rolled back to 0.1.0" in failed.stdout, failed.stdout
    assert info.exists()  # the venv in use is the one that ran before
    assert (home / "venv.previous" / info.relative_to(home / "venv")).exists()
