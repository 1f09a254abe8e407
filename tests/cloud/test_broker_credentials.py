"""MQTT credentials are stored in Mosquitto's own hash format, checked both ways.

mosquitto_passwd's hashes verify in Python; Python's hashes are accepted by a real Mosquitto.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path

import aiomqtt
import pytest

from cloud.security.broker_credentials import (
    PBKDF2_ITERATIONS,
    SCRYPT_N,
    hash_credential,
    is_exportable,
    verify_credential,
)
from protocols.mqtt.acl import acl_file_section, gateway_grants
from runtime.mqtt_client import refused_credentials
from tests.e2e.link_harness import mqtt_client
from tests.private_mosquitto import private_mosquitto

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
SECRET = "s3cret-value-0123456789"


def test_credentials_are_stored_hashed_in_mosquittos_format() -> None:
    stored = hash_credential(SECRET)
    assert SECRET not in stored
    empty, seven, iterations, salt, digest = stored.split("$")
    assert (empty, seven, int(iterations)) == ("", "7", PBKDF2_ITERATIONS)
    assert len(base64.b64decode(salt)) == 12
    assert len(base64.b64decode(digest)) == 64
    assert verify_credential(SECRET, stored)
    assert not verify_credential(SECRET + "x", stored)
    assert is_exportable(stored)
    assert hash_credential(SECRET) != stored  # a fresh salt each time


@pytest.mark.parametrize(
    "stored", ["garbage", "", "$7$", "$7$x$y$z", "$7$100$!!$!!", "$7$0$AAAA$AAAA", "$6$abc$def"]
)
def test_malformed_hashes_verify_nothing(stored: str) -> None:
    assert not verify_credential(SECRET, stored)


def test_hashes_from_before_still_verify_but_need_a_rotation() -> None:
    """The scrypt format the registry wrote before; Mosquitto cannot read it."""
    salt = bytes(range(16))
    digest = hashlib.scrypt(SECRET.encode(), salt=salt, n=SCRYPT_N, r=8, p=1)
    old = f"scrypt${SCRYPT_N}$8$1${salt.hex()}${digest.hex()}"
    assert verify_credential(SECRET, old)
    assert not verify_credential("other", old)
    assert not is_exportable(old)


def test_a_mosquitto_passwd_hash_verifies_in_python(tmp_path: Path) -> None:
    if not Path(MOSQUITTO_PASSWD).exists():
        pytest.skip(f"{MOSQUITTO_PASSWD} is missing: a machine defect (CI installs mosquitto)")
    path = tmp_path / "passwd"
    subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", str(path), "gw-1", SECRET], check=True)
    username, stored = path.read_text().strip().split(":", 1)
    assert username == "gw-1"
    assert stored.startswith("$7$")
    assert verify_credential(SECRET, stored)
    assert not verify_credential(SECRET[:-1], stored)


async def test_mosquitto_accepts_a_python_hash(tmp_path: Path) -> None:
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    passwd.write_text(f"gw-1:{hash_credential(SECRET)}\n")
    acl.write_text(acl_file_section("gw-1", gateway_grants("gw-1")))
    async with private_mosquitto(tmp_path, password_file=passwd, acl_file=acl) as broker:
        async with mqtt_client(broker.url, "t-right", username="gw-1", password=SECRET):
            pass
        with pytest.raises(aiomqtt.MqttError) as refused:
            async with mqtt_client(broker.url, "t-wrong", username="gw-1", password="nope"):
                pass
        assert refused_credentials(refused.value), refused.value
