"""The keys outside the database, sealed under a passphrase for a backup kept apart from it.

The field keys decrypt personal data and the command key signs commands to gateways; a
database restored without them is ciphertext nobody can read and gateways nobody can command.
The seal is scrypt (RFC 7914) and AES-256-GCM from `cryptography`. The first line names the
format, the second holds the KDF parameters, salt and nonce; both are bound as associated data,
so a changed header fails like a wrong passphrase.
"""

from __future__ import annotations

import base64
import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from cloud.security import crypto
from cloud.security.crypto import FieldKeys
from protocols.errors import AnjuError
from runtime.private_files import private_folder

MAGIC = b"anju-keys/1\n"
# scrypt's interactive-use cost of 2**14 is for logins; a backup is opened rarely, so it pays
# 2**17 (128 MiB, about half a second) to make guessing the passphrase offline dearer.
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
# A file asking for more memory (128 * n * r bytes) is refused rather than allowed to exhaust it.
MAX_SCRYPT_BYTES = 2**30
MIN_PASSPHRASE = 12


class KeyBackupError(AnjuError):
    pass


@dataclass(frozen=True)
class KeyBundle:
    field_keys: FieldKeys
    command_key_pem: bytes | None  # None: no command key was made on that host


def _kdf(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    # NFC: the same passphrase typed on another keyboard or system gives the same bytes.
    secret = unicodedata.normalize("NFC", passphrase).encode()
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(secret)


def seal(bundle: KeyBundle, passphrase: str, *, n: int = SCRYPT_N) -> bytes:
    if len(passphrase) < MIN_PASSPHRASE:
        raise KeyBackupError(f"the passphrase must have {MIN_PASSPHRASE}+ characters")
    salt, nonce = os.urandom(16), os.urandom(12)
    header = {
        "kdf": "scrypt",
        "n": n,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": base64.b64encode(salt).decode(),
        "nonce": base64.b64encode(nonce).decode(),
    }
    head = MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n"
    keys = bundle.field_keys
    body = {
        "field_keys": {
            "current": keys.current,
            "keys": {k: base64.b64encode(v).decode() for k, v in keys.keys.items()},
            "index_key": base64.b64encode(keys.index_key).decode(),
        },
        "command_key_pem": bundle.command_key_pem.decode() if bundle.command_key_pem else None,
    }
    aead = AESGCM(_kdf(passphrase, salt, n, SCRYPT_R, SCRYPT_P))
    return head + aead.encrypt(nonce, json.dumps(body).encode(), head)


def unseal(blob: bytes, passphrase: str) -> KeyBundle:
    if not blob.startswith(MAGIC):
        raise KeyBackupError("not an Anju key backup")
    line, sep, sealed = blob[len(MAGIC) :].partition(b"\n")
    try:
        header = json.loads(line)
        n, r, p = int(header["n"]), int(header["r"]), int(header["p"])
        salt = base64.b64decode(header["salt"], validate=True)
        nonce = base64.b64decode(header["nonce"], validate=True)
    except (ValueError, KeyError, TypeError):
        raise KeyBackupError("the key backup's header is damaged") from None
    costly = n < 2 or n & (n - 1) or r < 1 or 128 * n * r > MAX_SCRYPT_BYTES or not 1 <= p <= 4
    if not sep or header.get("kdf") != "scrypt" or costly:
        raise KeyBackupError("the key backup's header is damaged")
    head = MAGIC + line + b"\n"
    try:
        plain = AESGCM(_kdf(passphrase, salt, n, r, p)).decrypt(nonce, sealed, head)
    except InvalidTag:
        raise KeyBackupError("wrong passphrase, or the key backup was altered") from None
    body = json.loads(plain)
    ring = body["field_keys"]
    field_keys = FieldKeys(
        current=ring["current"],
        keys={k: base64.b64decode(v) for k, v in ring["keys"].items()},
        index_key=base64.b64decode(ring["index_key"]),
    )
    pem = body["command_key_pem"]
    return KeyBundle(field_keys, pem.encode() if pem else None)


def install(bundle: KeyBundle, field_key_file: Path, command_key_file: Path) -> list[Path]:
    """Write the keys where the cloud reads them (mode 0600); returns the files written.

    A file already there with other keys is refused, never replaced: it may be the only copy
    of keys newer than the backup. The same keys are left as they are.
    """
    written = []
    if field_key_file.exists():
        if crypto.read_key_file(field_key_file) != bundle.field_keys:
            raise KeyBackupError(f"{field_key_file} holds other keys; move it away first")
    else:
        crypto.write_key_file(field_key_file, bundle.field_keys)
        written.append(field_key_file)
    pem = bundle.command_key_pem
    if pem is not None:
        if command_key_file.exists():
            if command_key_file.read_bytes() != pem:
                raise KeyBackupError(f"{command_key_file} holds another key; move it away first")
        else:
            private_folder(command_key_file.parent)
            fd = os.open(command_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            written.append(command_key_file)
    return written
