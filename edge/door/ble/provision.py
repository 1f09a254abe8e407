"""A lock's installation key: a new random 128-bit key written where the gateway reads it
(`ble.key_file`), owner-only, never over an existing key by accident.

The same key goes into the lock over its installer channel (docs/locks.md). The key never
leaves the gateway's file; its fingerprint (a truncated SHA-256 with a domain prefix, which
says nothing about the key) is what an installer compares and the door's records keep.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from protocols.errors import AnjuError, ConfigError
from protocols.lock.frames import KEY_BYTES
from runtime.private_files import FILE_MODE, private_folder

FINGERPRINT_DOMAIN = b"anju-lock-key-v1\n"
HTTP_TIMEOUT_S = 30.0  # a cloud across a slow mobile link, but not forever


def fingerprint(key: bytes) -> str:
    """16 hex digits that name the key without revealing it."""
    return hashlib.sha256(FINGERPRINT_DOMAIN + key).hexdigest()[:16]


def provision_key(path: Path, *, replace: bool = False) -> bytes:
    """Write a new key (32 hex digits, mode 0600, synced) at `path` and return it. An existing
    key is kept (ConfigError) unless `replace`: re-keying means provisioning the lock again.
    The file appears whole or not at all (written beside it, then linked or renamed)."""
    private_folder(path.parent)
    key = secrets.token_bytes(KEY_BYTES)
    staged = path.with_name(f".{path.name}.new")
    with contextlib.suppress(FileNotFoundError):
        staged.unlink()  # a stage a crash left behind holds no key anyone uses
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask
        os.write(fd, key.hex().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if replace:
            staged.replace(path)
        else:
            os.link(staged, path)  # fails if a key is there: never overwritten by accident
    except FileExistsError:
        raise ConfigError(
            f"{path} already holds a lock key; --replace makes a new one (the lock must then be"
            " provisioned with it)"
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
    return key


class RegisterError(AnjuError):
    """The cloud did not record the fingerprint; the message says why."""


def register_fingerprint(
    cloud_url: str, token: str, gateway_id: str, door: str, key_fingerprint: str
) -> int:
    """Record `key_fingerprint` on the cloud's record of this gateway's door `door` (the
    caller's API token: someone who may change doors there); the door record's id."""
    if urlsplit(cloud_url).scheme not in {"http", "https"}:
        raise RegisterError(f"--cloud {cloud_url!r}: expected https://HOST[:PORT]")
    api = cloud_url.rstrip("/") + "/api/v1"
    listed = _api_call("GET", f"{api}/doors?{urlencode({'gateway_id': gateway_id})}", token)
    found = [d["id"] for d in listed.get("items", []) if d.get("code") == door]
    if not found:
        raise RegisterError(f"the cloud has no door {door!r} on gateway {gateway_id} for you")
    _api_call("PUT", f"{api}/doors/{found[0]}/lock-key", token, {"fingerprint": key_fingerprint})
    return int(found[0])


def _api_call(method: str, url: str, token: str, body: object = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - scheme checked
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as answer:  # noqa: S310
            result = json.loads(answer.read(1024 * 1024))
    except urllib.error.HTTPError as exc:
        raise RegisterError(
            f"the cloud refused ({exc.code}): {exc.read(500).decode(errors='replace')}"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RegisterError(f"cannot register with the cloud: {exc}") from None
    return result if isinstance(result, dict) else {}
