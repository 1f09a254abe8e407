"""Field encryption: AES-256-GCM envelopes that name their key, and keyed HMAC blind indexes.

Envelope: b"A1" | len(key_id) (1 byte) | key_id (ASCII) | nonce (12) | ciphertext+tag.
The `context` (e.g. b"tenants.id_number") is bound as associated data, so a ciphertext copied
into another column does not decrypt. Public API for other areas: `FieldKeys`, `encrypt`,
`decrypt`, `key_id_of`, `blind_index`, `generate_key`, `load_field_keys`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocols.errors import AnjuError, ConfigError
from runtime.private_files import private_folder

MAGIC = b"A1"
NONCE_BYTES = 12
KEY_BYTES = 32
KEY_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
KEY_FILE = "field-keys.json"
# Development only: a fixed, publicly known key so a fresh checkout runs. Refused in production.
_DEV_KEY = hashlib.sha256(b"anju development field key - not secret").digest()
_DEV_INDEX_KEY = hashlib.sha256(b"anju development blind index key - not secret").digest()


class DecryptionError(AnjuError):
    pass


@dataclass(frozen=True)
class FieldKeys:
    """The key ring: `current` encrypts; every listed key can still decrypt."""

    current: str
    keys: dict[str, bytes] = field(repr=False)
    index_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ConfigError(f"field keys: current key {self.current!r} is not in the key ring")
        for kid, key in self.keys.items():
            if not KEY_ID_RE.match(kid):
                raise ConfigError(f"field keys: key id {kid!r} must match {KEY_ID_RE.pattern}")
            if len(key) != KEY_BYTES:
                raise ConfigError(f"field keys: key {kid!r} must be {KEY_BYTES} bytes")
        if len(self.index_key) < KEY_BYTES:
            raise ConfigError(f"field keys: the blind index key must be {KEY_BYTES}+ bytes")

    @property
    def is_development(self) -> bool:
        return self.keys.get(self.current) == _DEV_KEY

    @property
    def has_development_index_key(self) -> bool:
        return hmac.compare_digest(self.index_key, _DEV_INDEX_KEY)


def development_keys() -> FieldKeys:
    return FieldKeys(current="dev", keys={"dev": _DEV_KEY}, index_key=_DEV_INDEX_KEY)


def generate_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


@lru_cache(maxsize=32)
def _aead(key: bytes) -> AESGCM:
    """One cipher object per key: building it costs more than sealing a short field."""
    return AESGCM(key)


def encrypt(keys: FieldKeys, plaintext: bytes, *, context: bytes) -> bytes:
    kid = keys.current.encode("ascii")
    nonce = os.urandom(NONCE_BYTES)
    sealed = _aead(keys.keys[keys.current]).encrypt(nonce, plaintext, context)
    return MAGIC + bytes([len(kid)]) + kid + nonce + sealed


def key_id_of(blob: bytes) -> str:
    if blob[:2] != MAGIC or len(blob) < 3:
        raise DecryptionError("not an Anju field envelope")
    n = blob[2]
    return blob[3 : 3 + n].decode("ascii")


def decrypt(keys: FieldKeys, blob: bytes, *, context: bytes) -> bytes:
    kid = key_id_of(blob)
    key = keys.keys.get(kid)
    if key is None:
        raise DecryptionError(f"field key {kid!r} is not in the key ring")
    start = 3 + len(kid)
    nonce, sealed = blob[start : start + NONCE_BYTES], blob[start + NONCE_BYTES :]
    try:
        return _aead(key).decrypt(nonce, sealed, context)
    except InvalidTag:
        raise DecryptionError(f"field envelope does not verify ({context.decode()})") from None


def blind_index(keys: FieldKeys, value: str, *, context: bytes) -> str:
    """Deterministic keyed digest for exact-match lookup; the value must be normalised first."""
    return hmac.digest(keys.index_key, context + b"\x00" + value.encode(), "sha256").hex()


def encrypt_str(keys: FieldKeys, value: str, *, context: str) -> bytes:
    return encrypt(keys, value.encode(), context=context.encode())


def decrypt_str(keys: FieldKeys, blob: bytes, *, context: str) -> str:
    return decrypt(keys, blob, context=context.encode()).decode()


# ---- loading --------------------------------------------------------------------------------


def parse_keys(spec: str, index_key: str) -> FieldKeys:
    """`kid:base64key,kid:base64key` (first is current) and a base64 blind-index key."""
    keys: dict[str, bytes] = {}
    current = ""
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kid, sep, b64 = part.partition(":")
        if not sep:
            raise ConfigError("ANJU_FIELD_KEYS: expected kid:base64key[,kid:base64key...]")
        keys[kid] = _b64(b64, f"ANJU_FIELD_KEYS ({kid})")
        current = current or kid
    return FieldKeys(current=current, keys=keys, index_key=_b64(index_key, "ANJU_INDEX_KEY"))


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise ConfigError(f"{where}: not valid base64") from None


def read_key_file(path: Path) -> FieldKeys:
    try:
        data = json.loads(path.read_text())
        return FieldKeys(
            current=data["current"],
            keys={k: base64.b64decode(v) for k, v in data["keys"].items()},
            index_key=base64.b64decode(data["index_key"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a readable field key file ({exc})") from None


def write_key_file(path: Path, keys: FieldKeys) -> None:
    data = {
        "current": keys.current,
        "keys": {k: base64.b64encode(v).decode() for k, v in keys.keys.items()},
        "index_key": base64.b64encode(keys.index_key).decode(),
    }
    private_folder(path.parent)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def load_field_keys(*, spec: str, index_key: str, data_dir: Path, development: bool) -> FieldKeys:
    """From ANJU_FIELD_KEYS/ANJU_INDEX_KEY, else `<data_dir>/field-keys.json`, else (dev only) a
    fixed placeholder. Production without real keys is refused."""
    if spec:
        keys = parse_keys(spec, index_key)
    elif (data_dir / KEY_FILE).exists():
        keys = read_key_file(data_dir / KEY_FILE)
    elif development:
        return development_keys()
    else:
        raise ConfigError(
            "no field encryption keys: set ANJU_FIELD_KEYS and ANJU_INDEX_KEY, or run"
            f" `anju cloud rotate-keys --new-key` to create {data_dir / KEY_FILE}"
        )
    if not development and keys.is_development:
        raise ConfigError("field keys: the development placeholder key is refused in production")
    if not development and keys.has_development_index_key:
        raise ConfigError(
            "ANJU_INDEX_KEY: the published development blind-index key is refused in production;"
            " set a random one (and rebuild the indexes: anju cloud rotate-keys)"
        )
    return keys
