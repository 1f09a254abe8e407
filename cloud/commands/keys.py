"""The cloud's command-signing key: an Ed25519 private key in a PEM file only its owner reads.

Gateways hold the public half (`commands.public_key` in their YAML). Losing the file means
issuing a new key and re-configuring every gateway, so nothing here ever overwrites one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.config import Settings
from protocols.errors import ConfigError
from runtime.private_files import private_folder

log = logging.getLogger(__name__)


def create_key(path: Path) -> Ed25519PrivateKey:
    """A new key in a new file with mode 0600; an existing file is an error, never replaced."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists; a command key is never overwritten") from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return key


def read_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"ANJU_COMMAND_KEY_FILE {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"ANJU_COMMAND_KEY_FILE {path}: not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"ANJU_COMMAND_KEY_FILE {path}: not an Ed25519 key")
    if path.stat().st_mode & 0o077:
        log.warning("command key %s is readable by others than its owner (chmod 600)", path)
    return key


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The configured key; in development one is created on first use."""
    path = settings.command_key_path
    if not path.exists() and settings.env == "development":
        try:
            key = create_key(path)
        except ConfigError:  # another process created it first
            return read_key(path)
        log.warning("created a development command key at %s", path)
        return key
    if not path.exists():
        raise ConfigError(
            f"ANJU_COMMAND_KEY_FILE: no command key at {path}; create one with"
            " `anju cloud keys init`"
        )
    return read_key(path)


def key_reader(settings: Settings) -> Callable[[], Ed25519PrivateKey]:
    """The configured key, read when first needed and then kept (a process signs lists,
    configs and commands with one key)."""
    held: list[Ed25519PrivateKey] = []

    def read() -> Ed25519PrivateKey:
        if not held:
            held.append(signing_key(settings))
        return held[0]

    return read
