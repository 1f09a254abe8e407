"""Ed25519 as a gateway checks it: libsodium, through PyNaCl.

The cloud signs commands, remote configs and access lists with `cryptography` (its key is a PEM
file); a gateway only verifies, and libsodium takes far less of its resident memory than
cryptography's Rust extension, which brings an OpenSSL of its own (docs/metering.md).
Ed25519 (RFC 8032) is deterministic and fully specified, so a signature is the same 64 bytes
in either library.
Verifying functions take either kind of public key: the gateway's `VerifyKey`, or a
`cryptography` key on the cloud's side (its tests, its own round trips).
"""

from __future__ import annotations

import base64
import ctypes
from collections.abc import Callable
from typing import Protocol, TypeAlias, cast

from nacl.signing import VerifyKey

PUBLIC_BYTES = 32
SIGNATURE_BYTES = 64
# An Ed25519 SubjectPublicKeyInfo (RFC 8410) is this DER header and the raw key: all a PEM
# `PUBLIC KEY` block of an Ed25519 key holds.
SPKI_HEADER = bytes.fromhex("302a300506032b6570032100")
PEM_BEGIN, PEM_END = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"


class RawPublicKey(Protocol):
    """A public key of another library that gives its raw bytes (cryptography's)."""

    def public_bytes_raw(self) -> bytes: ...


PublicKey: TypeAlias = VerifyKey | RawPublicKey


def raw_bytes(key: PublicKey) -> bytes:
    return bytes(key) if isinstance(key, VerifyKey) else key.public_bytes_raw()


def _detached() -> Callable[[bytes, bytes, int, bytes], int]:
    """libsodium's `crypto_sign_verify_detached`, from the library PyNaCl loaded (and
    initialised when `nacl.signing` was imported). PyNaCl's own `verify` joins signature and
    message and copies the message out twice: three copies of a whole access list at once
    (docs/access.md bounds its size); this reads `data` in place."""
    from nacl import _sodium  # noqa: PLC0415 - the extension module PyNaCl loaded already

    function = ctypes.CDLL(_sodium.__file__).crypto_sign_verify_detached
    function.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p)
    function.restype = ctypes.c_int
    return cast(Callable[[bytes, bytes, int, bytes], int], function)


_verify_detached = _detached()


def verifies(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether `signature` is `key`'s over `data` (a signature of the wrong length is not)."""
    raw = raw_bytes(key)
    if len(signature) != SIGNATURE_BYTES or len(raw) != PUBLIC_BYTES:
        return False
    return _verify_detached(signature, data, len(data), raw) == 0


def load_public_key(text: str) -> VerifyKey:
    """A key from base64 of its raw 32 bytes or from a PEM `PUBLIC KEY` block; ValueError if
    it is neither (or the PEM holds another kind of key)."""
    text = text.strip()
    if text.startswith(PEM_BEGIN) and text.endswith(PEM_END):
        der = base64.b64decode("".join(text[len(PEM_BEGIN) : -len(PEM_END)].split()), validate=True)
        if len(der) != len(SPKI_HEADER) + PUBLIC_BYTES or not der.startswith(SPKI_HEADER):
            raise ValueError("the PEM key is not an Ed25519 public key")
        raw = der[len(SPKI_HEADER) :]
    elif text.startswith("-----BEGIN"):
        raise ValueError("not a PEM public key")
    else:
        raw = base64.b64decode(text, validate=True)
    if len(raw) != PUBLIC_BYTES:
        raise ValueError(f"an Ed25519 public key has {PUBLIC_BYTES} bytes, not {len(raw)}")
    return VerifyKey(raw)
