"""Access lists for tests: a signing key, doors, credentials and rights built in one line."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols.access.schema import (
    AccessList,
    Credential,
    CredentialKind,
    Door,
    PinHash,
    Revocation,
    RevocationKind,
    Right,
    RightKind,
)
from protocols.face.contract import RECOGNIZER

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
GATEWAY = "gw-1"
SECRET = bytes(range(100, 132))
# Cheap Argon2id parameters: tests verify many PINs.
PIN_PARAMS = {"time_cost": 1, "memory_kib": 8, "parallelism": 1}


def embedding(seed: int) -> str:
    """A unit vector of the recognizer's size, the same for the same seed."""
    vector = np.random.default_rng(seed).standard_normal(RECOGNIZER.dim).astype("<f4")
    vector /= np.linalg.norm(vector)
    return base64.b64encode(vector.astype("<f4").tobytes()).decode()


def pin_hash(pin: str, salt: bytes = b"salt-0123456789a") -> PinHash:
    from argon2.low_level import Type, hash_secret_raw  # noqa: PLC0415 - the edge's dependency

    raw = hash_secret_raw(
        pin.encode(),
        salt,
        time_cost=1,
        memory_cost=8,
        parallelism=1,
        hash_len=32,
        type=Type.ID,
    )
    return PinHash(
        **PIN_PARAMS,
        salt=base64.b64encode(salt).decode(),
        hash=base64.b64encode(raw).decode(),
    )


def door(id_: str = "front", *, codes: bool = True, digits: int = 9) -> Door:
    secret = base64.b64encode(hashlib.sha256(SECRET + id_.encode()).digest()).decode()
    return Door(id=id_, code_secret=secret if codes else None, code_digits=digits)


def door_secret(id_: str = "front") -> bytes:
    return hashlib.sha256(SECRET + id_.encode()).digest()


def face(id_: str, subject: str, seed: int = 0) -> Credential:
    return Credential(id=id_, subject=subject, kind=CredentialKind.FACE, embedding=embedding(seed))


def pin(id_: str, subject: str, keypad_id: str, pin_: str = "123456") -> Credential:
    return Credential(
        id=id_, subject=subject, kind=CredentialKind.PIN, keypad_id=keypad_id, pin=pin_hash(pin_)
    )


def right(
    id_: str,
    subject: str,
    *doors: str,
    days: float = 30,
    start: datetime = T0,
    kind: RightKind = RightKind.LEASE,
    uses: int | None = None,
) -> Right:
    return Right(
        id=id_,
        subject=subject,
        kind=kind,
        doors=list(doors or ("front",)),
        valid_from=start,
        valid_until=start + timedelta(days=days),
        uses=uses,
    )


def revoke(kind: RevocationKind, id_: str) -> Revocation:
    return Revocation(kind=kind, id=id_)


def access_list(version: int = 1, **fields: Any) -> AccessList:
    base: dict[str, Any] = {
        "gateway_id": GATEWAY,
        "version": version,
        "issued_at": T0,
        "doors": [door("front"), door("garage")],
    }
    return AccessList(**(base | fields))
