"""Signed access lists on the wire.

A `down/access` payload is the base64 Ed25519 signature (88 characters), a newline, and the
list's JSON body. The signature covers the domain prefix `anju-access-v1\\n` followed by the
body bytes exactly as sent, so the gateway checks it before parsing anything and never
re-encodes a 10 MB list to do so. The cloud writes the body in the command scheme's canonical
form (UTF-8 JSON, keys sorted, no whitespace, times as `datetime.isoformat()`), so a list
always has the same bytes. The key is the cloud's command key; the prefix keeps a command's
signature from ever being valid for a list, and the reverse.
"""

from __future__ import annotations

import base64
import binascii
import json
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from protocols import ed25519
from protocols.access.schema import FACES, MAX_ACCESS_BYTES, AccessList
from protocols.errors import AnjuError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DOMAIN = b"anju-access-v1\n"
SIGNATURE_CHARS = 88  # base64 of 64 bytes


class Refusal(StrEnum):
    """Why a gateway did not apply a `down/access` payload."""

    OVERSIZE = "oversize"
    UNSIGNED = "unsigned"  # no signature line, or the gateway has no key
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"  # signed, but not a valid list
    WRONG_GATEWAY = "wrong_gateway"
    REPLAYED = "replayed"  # version not after the one applied
    STALE_BASE = "stale_base"  # a delta on another version than the one applied


class AccessRefusedError(AnjuError):
    def __init__(self, reason: Refusal, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def canonical_body(message: BaseModel) -> bytes:
    fields = message.model_dump(mode="json", by_alias=True)
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def encode_signed(
    message: BaseModel,
    key: Ed25519PrivateKey,
    *,
    domain: bytes = DOMAIN,
    max_bytes: int = MAX_ACCESS_BYTES,
) -> bytes:
    """The payload the cloud publishes on `down/access` (or, with its own domain and bound,
    on `down/config`: protocols.mqtt.downlink)."""
    body = canonical_body(message)
    if len(body) + SIGNATURE_CHARS + 1 > max_bytes:
        raise AccessRefusedError(Refusal.OVERSIZE, f"a body of {len(body)} bytes")
    signature = base64.b64encode(key.sign(domain + body))
    return signature + b"\n" + body


def verify_signed(
    payload: bytes,
    key: ed25519.PublicKey | None,
    *,
    domain: bytes = DOMAIN,
    max_bytes: int = MAX_ACCESS_BYTES,
) -> bytes:
    """The body of `payload` if `key` signed it; `AccessRefusedError` otherwise."""
    if len(payload) > max_bytes:
        raise AccessRefusedError(Refusal.OVERSIZE, f"{len(payload)} bytes > {max_bytes}")
    if key is None:
        raise AccessRefusedError(Refusal.UNSIGNED, "this gateway has no command key")
    if payload[SIGNATURE_CHARS : SIGNATURE_CHARS + 1] != b"\n":
        raise AccessRefusedError(Refusal.UNSIGNED, "no signature line")
    try:
        signature = base64.b64decode(payload[:SIGNATURE_CHARS], validate=True)
    except binascii.Error:
        raise AccessRefusedError(Refusal.BAD_SIGNATURE, "the signature is not base64") from None
    body = payload[SIGNATURE_CHARS + 1 :]
    if not ed25519.verifies(key, signature, domain + body):
        raise AccessRefusedError(Refusal.BAD_SIGNATURE, "the signature does not verify")
    return body


def parse_body(body: bytes, faces: bytearray | None = None) -> AccessList:
    """The list in `body`; with `faces`, its face vectors are appended there and the
    credentials keep `schema.SET_ASIDE` (the gateway seals them, and holds none as text)."""
    try:
        return AccessList.model_validate_json(body, context={FACES: faces})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise AccessRefusedError(Refusal.MALFORMED, f"{where}: {first['msg']}") from None


def decode_signed(
    payload: bytes,
    key: ed25519.PublicKey | None,
    *,
    gateway_id: str,
    faces: bytearray | None = None,
) -> AccessList:
    """Signature first (a tampered address or version is a bad signature), then the schema
    and the address (`faces`: see `parse_body`). Whether the version may be applied is the
    holder's to check (`admit`)."""
    access = parse_body(verify_signed(payload, key), faces)
    if access.gateway_id != gateway_id:
        raise AccessRefusedError(
            Refusal.WRONG_GATEWAY, f"addressed to {access.gateway_id!r}, not {gateway_id!r}"
        )
    return access


def admit(access: AccessList, held_version: int | None) -> None:
    """Refuse a replayed version, or a delta on another base than `held_version`."""
    if held_version is not None and access.version <= held_version:
        raise AccessRefusedError(
            Refusal.REPLAYED, f"version {access.version} is not after {held_version}"
        )
    if not access.full and access.base_version != held_version:
        have = "none" if held_version is None else held_version
        raise AccessRefusedError(
            Refusal.STALE_BASE, f"a delta on version {access.base_version}, held {have}"
        )
