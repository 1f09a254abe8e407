"""MQTT passwords of gateways and cloud services, hashed so that both brokers can check them.

New hashes are Mosquitto 2.0's own password_file format, `$7$ITER$SALT$HASH` (PBKDF2-HMAC-SHA512,
12-byte salt, 64-byte hash, standard base64), so the registry exports to Mosquitto verbatim and
the embedded broker checks the same string. Hashes from before (`scrypt$…`) still verify, but
Mosquitto cannot read them: those gateways need a new credential (`is_exportable`).

The iteration count is low next to a login password's because the secrets are 192-bit random
tokens (stretching adds nothing against guessing them) and Mosquitto checks every CONNECT on its
one thread: 10,000 rounds is ~5 ms, so a thousand gateways reconnecting at once cost it ~5 s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PBKDF2_ITERATIONS = 10_000
PBKDF2_SALT_BYTES = 12  # Mosquitto's own
PBKDF2_HASH_BYTES = 64
MIN_SECRET_CHARS = 16  # a secret someone chose (a service's, from a vault) must be at least this
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # the format before; verified, no longer written


def new_secret() -> str:
    """A random MQTT password: 24 bytes, URL-safe (fits a YAML file and a URL's userinfo)."""
    return secrets.token_urlsafe(24)


def hash_credential(
    secret: str, salt: bytes | None = None, *, iterations: int = PBKDF2_ITERATIONS
) -> str:
    salt = salt or secrets.token_bytes(PBKDF2_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations, PBKDF2_HASH_BYTES)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_credential(secret: str, stored: str) -> bool:
    """True if `secret` matches `stored` (either format); False for anything malformed."""
    try:
        if stored.startswith("$7$"):
            return _verify_pbkdf2(secret, stored)
        if stored.startswith("scrypt$"):
            return _verify_scrypt(secret, stored)
    except (ValueError, binascii.Error):
        return False
    return False


def is_exportable(stored: str) -> bool:
    """Whether Mosquitto can check this hash (an old scrypt one it cannot: rotate it)."""
    return stored.startswith("$7$")


def _verify_pbkdf2(secret: str, stored: str) -> bool:
    _, _, iterations, salt, digest = stored.split("$")
    expected = base64.b64decode(digest, validate=True)
    got = hashlib.pbkdf2_hmac(
        "sha512",
        secret.encode(),
        base64.b64decode(salt, validate=True),
        int(iterations),
        len(expected),
    )
    return bool(expected) and hmac.compare_digest(got, expected)


def _verify_scrypt(secret: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    got = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(got.hex(), digest)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
