"""One gateway's access list from the grants over its doors: pure.

Subjects carry their credentials: a tenant their face embeddings (while enrolled, i.e. while
consent stands) and their PIN, a staff user their PIN, a visitor pass its code (a PIN
credential of its own). Ids are derived from the records, so an unchanged record compiles to
the same entry, and a change travels as a small delta (`delta`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from cloud.access.rights import Grant
from protocols.access.schema import (
    AccessList,
    Credential,
    CredentialKind,
    Door,
    PinHash,
    Removed,
    Right,
    RightKind,
)
from protocols.access.signing import canonical_body

# A worker's right through a work order travels as a staff right (its id names the order).
KINDS = {
    "lease": RightKind.LEASE,
    "staff": RightKind.STAFF,
    "order": RightKind.STAFF,
    "pass": RightKind.VISITOR,
}


@dataclass(frozen=True, slots=True)
class DoorSecret:
    id: int
    code: str  # the door's id on its gateway
    secret: bytes


@dataclass(frozen=True, slots=True)
class Pin:
    keypad_id: str
    phc: str  # argon2id PHC string


def pin_hash(phc: str) -> PinHash:
    """`$argon2id$v=19$m=…,t=…,p=…$salt$hash` (unpadded base64) as the list carries it."""
    parts = phc.split("$")
    if len(parts) != 6 or parts[1] != "argon2id" or parts[2] != "v=19":
        raise ValueError("not an argon2id v19 hash")
    params = dict(p.split("=", 1) for p in parts[3].split(","))
    return PinHash(
        time_cost=int(params["t"]),
        memory_kib=int(params["m"]),
        parallelism=int(params["p"]),
        salt=_padded(parts[4]),
        hash=_padded(parts[5]),
    )


def _padded(text: str) -> str:
    return base64.b64encode(base64.b64decode(text + "=" * (-len(text) % 4))).decode()


def compile_list(
    gateway_id: str,
    doors: Sequence[DoorSecret],
    grants: Iterable[Grant],
    *,
    faces: Mapping[str, Sequence[str]],
    pins: Mapping[str, Pin],
    version: int,
    issued_at: datetime,
) -> AccessList:
    """The whole list: `doors` of the gateway, the grants' rights restricted to them, and the
    credentials of the subjects that keep a right. `faces`: subject → base64 embeddings;
    `pins`: subject → keypad id and hash."""
    codes = {d.id: d.code for d in doors}
    rights: list[Right] = []
    for grant in grants:
        opened = sorted(codes[d] for d in grant.doors if d in codes)
        if not opened:
            continue
        rights.append(
            Right(
                id=right_id(grant),
                subject=grant.subject,
                kind=KINDS[grant.source.split(":", 1)[0]],
                doors=opened,
                valid_from=grant.valid_from,
                valid_until=grant.valid_until,
                uses=grant.uses,
            )
        )
    subjects = sorted({r.subject for r in rights})
    credentials: list[Credential] = []
    for subject in subjects:
        credentials.extend(
            Credential(
                id=f"{subject}:face{i}", subject=subject, kind=CredentialKind.FACE, embedding=text
            )
            for i, text in enumerate(faces.get(subject, ()))
        )
        pin = pins.get(subject)
        if pin is not None:
            credentials.append(
                Credential(
                    id=f"{subject}:pin",
                    subject=subject,
                    kind=CredentialKind.PIN,
                    keypad_id=pin.keypad_id,
                    pin=pin_hash(pin.phc),
                )
            )
    return AccessList(
        gateway_id=gateway_id,
        version=version,
        issued_at=issued_at,
        doors=[
            Door(id=d.code, code_secret=base64.b64encode(d.secret).decode())
            for d in sorted(doors, key=lambda d: d.code)
        ],
        credentials=credentials,
        rights=sorted(rights, key=lambda r: r.id),
    )


def right_id(grant: Grant) -> str:
    return f"{grant.source}@{grant.subject}"


def content_hash(access: AccessList) -> str:
    """What the list says, whatever its version and time of issue."""
    body = canonical_body(access.model_copy(update={"version": 1, "issued_at": _EPOCH}))
    return hashlib.sha256(body).hexdigest()


_EPOCH = datetime.fromisoformat("2000-01-01T00:00:00+00:00")


def delta(held: AccessList, new: AccessList) -> AccessList:
    """`new` as changes on `held` (both whole lists): what is new or changed, and the ids
    that are gone."""

    doors, gone_doors = changes(held.doors, new.doors)
    credentials, gone_credentials = changes(held.credentials, new.credentials)
    rights, gone_rights = changes(held.rights, new.rights)
    return AccessList(
        gateway_id=new.gateway_id,
        version=new.version,
        base_version=held.version,
        issued_at=new.issued_at,
        doors=doors,
        credentials=credentials,
        rights=rights,
        removed=Removed(doors=gone_doors, credentials=gone_credentials, rights=gone_rights),
    )


T = TypeVar("T", Door, Credential, Right)


def changes(old: Sequence[T], new: Sequence[T]) -> tuple[list[T], list[str]]:
    """Records of `new` that are not in `old` as they are, and ids of `old` gone from `new`."""
    before = {r.id: r for r in old}
    after = {r.id for r in new}
    return [r for r in new if before.get(r.id) != r], sorted(set(before) - after)
