"""The access list a gateway's doors decide from (`down/access`).

A list names the doors a gateway serves, the credentials that may be presented at them (a face
embedding, a keypad PIN's slow hash), the rights of subjects (tenants, staff, visitors) on doors
for a window and optionally a number of uses, and revocations that win over any right. Every
right ends (`valid_until` is required), so a gateway cut off from the cloud refuses a lease
that ended during the outage by the right's own expiry.

A list is sent whole (`base_version` None) or as a delta on exactly `base_version`: records
upserted by id and ids removed. `apply` is the one rule for both. Every string is bounded and
free of NUL; every count is capped so a hostile or broken list is refused before it costs the
gateway memory (the payload cap is checked on the bytes, before parsing).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from protocols.mqtt.bounds import MAX_INT64
from protocols.mqtt.messages import GatewayId, _iso, _utc

SCHEMA_VERSION = 1
# A full list of 10,000 face credentials is ~13 MB of JSON; MQTT carries it in one message.
MAX_ACCESS_BYTES = 16 * 1024 * 1024
MAX_DOORS = 256
MAX_CREDENTIALS = 20_000
MAX_RIGHTS = 20_000
MAX_REVOCATIONS = 20_000
MAX_DOORS_PER_RIGHT = 64
MAX_USES = 10_000
MAX_ID_CHARS = 64
# Argon2id work a list may ask of the gateway per PIN try (a Pi has 1-8 GiB and 4 cores).
MAX_ARGON2_MEMORY_KIB = 256 * 1024
MAX_ARGON2_TIME = 10
MAX_ARGON2_LANES = 8
CODE_SECRET_BYTES = 32
MIN_CODE_DIGITS = 8
MAX_CODE_DIGITS = 10
# The recognizer's vector (protocols.face.contract.RECOGNIZER, not imported: it needs numpy).
EMBEDDING_DIM = 192
EMBEDDING_BYTES = EMBEDDING_DIM * 4  # little-endian float32

# Ids: letters, digits and a few separators (no spaces, no NUL, no control characters).
ID = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$"
Id = Annotated[str, Field(pattern=ID)]
Version = Annotated[int, Field(ge=1, le=MAX_INT64)]
KeypadId = Annotated[str, Field(pattern=r"^[0-9]{1,8}$")]


def _b64(size_min: int, size_max: int) -> AfterValidator:
    def check(text: str) -> str:
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error:
            raise ValueError("not base64") from None
        if not size_min <= len(raw) <= size_max:
            raise ValueError(f"{len(raw)} bytes, want {size_min}..{size_max}")
        return text

    return AfterValidator(check)


# Patterns bound the length before anything is decoded.
Salt = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/=]{12,88}$"), _b64(8, 64)]
Digest = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/=]{20,88}$"), _b64(16, 64)]
CodeSecret = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/=]{44}$"), _b64(32, 32)]
# What a face credential's `embedding` holds once parsed with a `FACES` sink (see `_set_aside`).
SET_ASIDE = "set-aside"
# The validation context's key for that sink: a bytearray the vectors are appended to.
FACES = "faces"


def _set_aside(text: str, info: ValidationInfo) -> str:
    """With a `FACES` sink in the context, the vector goes to the sink (in the order of the
    list) and the field keeps only `SET_ASIDE`: a gateway parsing 10,000 faces then holds
    7.5 MiB of vectors in one buffer instead of 10,000 strings of 1 KiB."""
    sink = (info.context or {}).get(FACES)
    if sink is None:
        return text
    sink += base64.b64decode(text)
    return SET_ASIDE


# 768 bytes are exactly 1,024 base64 characters, without padding.
Embedding = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{1024}$"), AfterValidator(_set_aside)]


# One set object per distinct set of field names given (see `_Model.model_post_init`).
_FIELDS_SET: dict[frozenset[str], set[str]] = {}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)

    def model_post_init(self, context: Any, /) -> None:
        """Share the set of field names given among records that were given the same ones.

        Pydantic keeps a set per instance (~730 bytes for six names, more than the record);
        a gateway holds 20,000 records. The models are frozen, so nothing adds to the set in
        place (`model_copy` copies it first)."""
        given = self.__pydantic_fields_set__
        shared = _FIELDS_SET.setdefault(frozenset(given), given)
        object.__setattr__(self, "__pydantic_fields_set__", shared)


class Door(_Model):
    """A door of the gateway. `code_secret` (32 random bytes, base64) enables offline one-time
    codes on its keypad (see `protocols.access.codes`); None: the door takes none."""

    id: Id
    code_secret: CodeSecret | None = None
    code_digits: Annotated[int, Field(ge=MIN_CODE_DIGITS, le=MAX_CODE_DIGITS)] = 9


class PinHash(_Model):
    """Argon2id of a keypad PIN (raw hash, RFC 9106 parameters); the PIN itself never travels."""

    algorithm: Literal["argon2id"] = "argon2id"
    version: Literal[19] = 19
    time_cost: Annotated[int, Field(ge=1, le=MAX_ARGON2_TIME)]
    memory_kib: Annotated[int, Field(ge=8, le=MAX_ARGON2_MEMORY_KIB)]
    parallelism: Annotated[int, Field(ge=1, le=MAX_ARGON2_LANES)]
    salt: Salt
    hash: Digest


class CredentialKind(StrEnum):
    FACE = "face"
    PIN = "pin"
    CODE = "code"  # an offline one-time code: a door's, not a subject's (never in `credentials`)


class Credential(_Model):
    """Something a subject presents: a face (`embedding`, base64 of the recognizer's float32
    vector) or a keypad PIN (`keypad_id`, typed before the PIN, and `pin`, its slow hash)."""

    id: Id
    subject: Id
    kind: Literal[CredentialKind.FACE, CredentialKind.PIN]
    embedding: Embedding | None = None
    keypad_id: KeypadId | None = None
    pin: PinHash | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> Credential:
        face = self.kind is CredentialKind.FACE
        if face != (self.embedding is not None) or (not face) != (self.pin is not None):
            raise ValueError("a face credential has an embedding, a PIN credential a pin hash")
        if (self.keypad_id is not None) != (not face):
            raise ValueError("a PIN credential, and only one, has a keypad_id")
        return self

    def embedding_bytes(self) -> bytes:
        if self.embedding is None:
            raise ValueError(f"credential {self.id} is not a face")
        if self.embedding == SET_ASIDE:
            raise ValueError(f"credential {self.id}'s embedding was set aside when parsed")
        return base64.b64decode(self.embedding)


class RightKind(StrEnum):
    LEASE = "lease"
    STAFF = "staff"
    VISITOR = "visitor"


class Right(_Model):
    """`subject` may open `doors` from `valid_from` until (excluding) `valid_until`, at most
    `uses` times if set (counted by the gateway, per right id)."""

    id: Id
    subject: Id
    kind: RightKind
    doors: Annotated[list[Id], Field(min_length=1, max_length=MAX_DOORS_PER_RIGHT)]
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    uses: Annotated[int, Field(ge=1, le=MAX_USES)] | None = None

    _times_utc = field_validator("valid_from", "valid_until")(_utc)
    _times_iso = field_serializer("valid_from", "valid_until")(_iso)

    @model_validator(mode="after")
    def _window(self) -> Right:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if len(set(self.doors)) != len(self.doors):
            raise ValueError("doors are listed twice")
        return self


class RevocationKind(StrEnum):
    SUBJECT = "subject"
    CREDENTIAL = "credential"
    RIGHT = "right"
    CODE = "code"  # an offline code's id (`codes.code_id`)


class Revocation(_Model):
    """Wins over any right; kept until the cloud removes it (after what it names has ended)."""

    kind: RevocationKind
    id: Annotated[str, Field(min_length=1, max_length=2 * MAX_ID_CHARS, pattern=r"^[^\x00-\x1f]*$")]

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.id}"


class Removed(_Model):
    """Ids a delta deletes; revocations by `Revocation.key`."""

    doors: Annotated[list[Id], Field(max_length=MAX_DOORS)] = []
    credentials: Annotated[list[Id], Field(max_length=MAX_CREDENTIALS)] = []
    rights: Annotated[list[Id], Field(max_length=MAX_RIGHTS)] = []
    revocations: Annotated[
        list[Annotated[str, Field(max_length=4 * MAX_ID_CHARS, pattern=r"^[^\x00-\x1f]*$")]],
        Field(max_length=MAX_REVOCATIONS),
    ] = []

    def empty(self) -> bool:
        return not (self.doors or self.credentials or self.rights or self.revocations)


R = TypeVar("R", Door, Credential, Right, Revocation)


def _key(record: Door | Credential | Right | Revocation) -> str:
    return record.key if isinstance(record, Revocation) else record.id


def _unique(records: Iterable[Door | Credential | Right | Revocation], what: str) -> None:
    seen: set[str] = set()
    for record in records:
        key = _key(record)
        if key in seen:
            raise ValueError(f"{what} {key!r} is listed twice")
        seen.add(key)


class AccessList(_Model):
    """One gateway's list (`base_version` None) or a delta on `base_version` (see the module)."""

    schema_: Annotated[Literal[1], Field(alias="schema")] = 1
    gateway_id: GatewayId
    version: Version
    base_version: Version | None = None
    issued_at: AwareDatetime
    doors: Annotated[list[Door], Field(max_length=MAX_DOORS)] = []
    credentials: Annotated[list[Credential], Field(max_length=MAX_CREDENTIALS)] = []
    rights: Annotated[list[Right], Field(max_length=MAX_RIGHTS)] = []
    revocations: Annotated[list[Revocation], Field(max_length=MAX_REVOCATIONS)] = []
    removed: Removed = Removed()

    _issued_utc = field_validator("issued_at")(_utc)
    _issued_iso = field_serializer("issued_at")(_iso)

    @model_validator(mode="after")
    def _consistent(self) -> AccessList:
        _check_list(self)
        return self

    @property
    def full(self) -> bool:
        return self.base_version is None


def _check_list(access: AccessList) -> None:
    _unique(access.doors, "door")
    _unique(access.credentials, "credential")
    _unique(access.rights, "right")
    _unique(access.revocations, "revocation")
    if access.base_version is None:
        if not access.removed.empty():
            raise ValueError("a full list removes nothing: it replaces the list")
        _check_whole(access)
    elif access.base_version >= access.version:
        raise ValueError("base_version must be before version")


def _check_whole(access: AccessList) -> None:
    """What holds for a whole list: keypad ids are unique (a PIN try names one hash)."""
    keypads = [c.keypad_id for c in access.credentials if c.keypad_id is not None]
    if len(set(keypads)) != len(keypads):
        raise ValueError("a keypad_id is used by two credentials")


class StaleDeltaError(ValueError):
    """A delta on another version than the one held: the gateway needs the whole list."""


def _merge(held: list[R], upserts: list[R], removed: Iterable[str]) -> list[R]:
    gone = set(removed) | {_key(r) for r in upserts}
    return [r for r in held if _key(r) not in gone] + upserts


def apply(held: AccessList | None, update: AccessList) -> AccessList:
    """The whole list after `update` (`held`: the whole list the gateway has, None: none).

    An update not newer than `held` is refused by the caller (a replay); here it raises
    ValueError too, so no path applies one. A delta on another version raises
    `StaleDeltaError`.
    """
    if held is not None and update.version <= held.version:
        raise ValueError(f"version {update.version} is not after {held.version}")
    if update.full:
        return update
    if held is None or held.version != update.base_version:
        have = "none" if held is None else held.version
        raise StaleDeltaError(f"delta on version {update.base_version}, held {have}")
    # The records were validated when they arrived (and the gateway may hold them slimmed, see
    # edge/access/service.py); what a merge can break is checked on the whole again.
    merged = AccessList.model_construct(
        gateway_id=update.gateway_id,
        version=update.version,
        issued_at=update.issued_at,
        doors=_merge(held.doors, update.doors, update.removed.doors),
        credentials=_merge(held.credentials, update.credentials, update.removed.credentials),
        rights=_merge(held.rights, update.rights, update.removed.rights),
        revocations=_merge(held.revocations, update.revocations, update.removed.revocations),
    )
    for name, items, cap in (
        ("doors", merged.doors, MAX_DOORS),
        ("credentials", merged.credentials, MAX_CREDENTIALS),
        ("rights", merged.rights, MAX_RIGHTS),
        ("revocations", merged.revocations, MAX_REVOCATIONS),
    ):
        if len(items) > cap:
            raise ValueError(f"the list would hold {len(items)} {name} (at most {cap})")
    _check_list(merged)
    return merged


def window_open(right: Right, at: datetime) -> bool:
    return right.valid_from <= at < right.valid_until
