"""A lock's installation key: a new random 128-bit key written where the gateway reads it
(`ble.key_file`), owner-only, never over an existing key by accident.

The same key goes into the lock over its installer channel (docs/locks.md). The key never
leaves the gateway's file; its fingerprint (a truncated SHA-256 with a domain prefix, which
says nothing about the key) is what an installer compares and the door's records keep.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from protocols.errors import ConfigError
from protocols.lock.frames import KEY_BYTES
from runtime.private_files import FILE_MODE, private_folder

FINGERPRINT_DOMAIN = b"anju-lock-key-v1\n"


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
