"""Signed commands (`down/cmd`) and their results (`up/ack`).

The cloud signs each command with its Ed25519 key; a gateway runs only commands signed by the
key in its config, addressed to it, not expired, and not seen before (the replay memory is the
gateway's; this module is pure and takes `now` from the caller).

What is signed is `signed_bytes(command)`: the domain prefix `anju-cmd-v1\\n` followed by the
UTF-8 JSON of every field but `signature`, keys sorted, no whitespace, times as UTC
`datetime.isoformat()` and the id as a lower-case hyphenated UUID:

    anju-cmd-v1
    {"args":{"door":"d-1"},"expires_at":"2026-03-01T08:05:00+00:00","gateway_id":"gw-1",
     "id":"…","issued_at":"2026-03-01T08:00:00+00:00","name":"door.unlock","schema":1}

(one line in reality). The prefix keeps a command signature from ever being valid for another
kind of message the same key might sign later.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_serializer,
    field_validator,
    model_validator,
)

from protocols import ed25519
from protocols.errors import AnjuError, ConfigError
from protocols.mqtt.bounds import Data, Detail, Value
from protocols.mqtt.messages import GatewayId, _iso, _utc
from protocols.text import CLEAN

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from nacl.signing import VerifyKey

DOMAIN = b"anju-cmd-v1\n"
# A command lives at most this long: a gateway remembers executed ids until they expire, so
# the bound is also the bound of that memory.
MAX_TTL = timedelta(hours=24)
MAX_ARGS = 16
MAX_ARG_CHARS = 256
MAX_RESULT_BYTES = 8 * 1024
SIGNATURE_BYTES = ed25519.SIGNATURE_BYTES

CommandName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$", max_length=64)]
ArgKey = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")]
ArgValue = (
    Annotated[StrictStr, Field(max_length=MAX_ARG_CHARS, pattern=CLEAN)]
    | StrictBool
    | Annotated[StrictInt, Field(ge=-(2**53), le=2**53)]  # exact in every JSON reader
    | Annotated[Value, Field(strict=True)]
    | None
)
Args = Annotated[dict[ArgKey, ArgValue], Field(max_length=MAX_ARGS)]


class Reason(StrEnum):
    """Why a gateway refused a command without running it."""

    MALFORMED = "malformed"  # not a command at all (the id, when readable, is reported)
    UNSIGNED = "unsigned"  # no signature, or the gateway has no key to check one with
    BAD_SIGNATURE = "bad_signature"
    WRONG_GATEWAY = "wrong_gateway"
    EXPIRED = "expired"  # past `expires_at`, or issued in the future, beyond the clock skew
    REPLAYED = "replayed"
    UNKNOWN_COMMAND = "unknown_command"


class Status(StrEnum):
    DONE = "done"
    FAILED = "failed"  # ran (or began to) and did not succeed; `detail` says why
    REJECTED = "rejected"  # not run; `reason` says why


class CommandRejectedError(AnjuError):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)


class Command(_Model):
    schema_: Annotated[Literal[1], Field(alias="schema")] = 1
    gateway_id: GatewayId
    id: uuid.UUID
    name: CommandName
    args: Args = {}
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    # base64 of the 64-byte Ed25519 signature over `signed_bytes`; None: unsigned
    signature: Annotated[str | None, Field(max_length=128, pattern=CLEAN)] = None

    _times_utc = field_validator("issued_at", "expires_at")(_utc)
    _times_iso = field_serializer("issued_at", "expires_at")(_iso)

    @model_validator(mode="after")
    def _lifetime(self) -> Command:
        ttl = self.expires_at - self.issued_at
        if not timedelta(0) < ttl <= MAX_TTL:
            raise ValueError(f"expires_at must be after issued_at and within {MAX_TTL}")
        return self


class CommandResult(_Model):
    """Gateway → cloud on `up/ack`: what became of one command.

    `command_id` is None only for a payload whose id could not be read (reason `malformed`).
    `data` is the command's answer (ping: version, uptime, outbox figures).
    """

    schema_: Annotated[Literal[1], Field(alias="schema")] = 1
    gateway_id: GatewayId
    command_id: uuid.UUID | None
    status: Status
    reason: Reason | None = None
    detail: Detail = ""
    data: Data = {}
    ts: AwareDatetime

    _ts_utc = field_validator("ts")(_utc)
    _ts_iso = field_serializer("ts")(_iso)

    @model_validator(mode="after")
    def _consistent(self) -> CommandResult:
        if (self.status is Status.REJECTED) != (self.reason is not None):
            raise ValueError("a reason is given exactly when the status is 'rejected'")
        if self.command_id is None and self.reason is not Reason.MALFORMED:
            raise ValueError("only a malformed command may have no id")
        if len(_canonical_json(self.data)) > MAX_RESULT_BYTES:
            raise ValueError(f"data is larger than {MAX_RESULT_BYTES} bytes")
        return self


def _canonical_json(value: object) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def signed_bytes(command: Command) -> bytes:
    """The exact bytes the signature covers (see the module docstring)."""
    fields = command.model_dump(mode="json", by_alias=True, exclude={"signature"})
    return DOMAIN + _canonical_json(fields)


def sign(command: Command, key: Ed25519PrivateKey) -> Command:
    signature = key.sign(signed_bytes(command))
    return command.model_copy(update={"signature": base64.b64encode(signature).decode()})


def verify(command: Command, key: ed25519.PublicKey | None) -> None:
    """Raise `CommandRejectedError` (unsigned / bad_signature) unless `key` signed this command."""
    if command.signature is None:
        raise CommandRejectedError(Reason.UNSIGNED, "the command carries no signature")
    if key is None:
        raise CommandRejectedError(Reason.UNSIGNED, "this gateway has no command key")
    try:
        signature = base64.b64decode(command.signature, validate=True)
    except binascii.Error:
        raise CommandRejectedError(Reason.BAD_SIGNATURE, "the signature is not base64") from None
    if len(signature) != SIGNATURE_BYTES:
        raise CommandRejectedError(Reason.BAD_SIGNATURE, f"the signature is {len(signature)} bytes")
    if not ed25519.verifies(key, signature, signed_bytes(command)):
        raise CommandRejectedError(Reason.BAD_SIGNATURE, "the signature does not verify")


def check(
    command: Command,
    key: ed25519.PublicKey | None,
    *,
    gateway_id: str,
    now: datetime,
    skew: timedelta,
) -> None:
    """Everything but the replay check, in the order a refusal is reported: a signature first
    (a tampered gateway id or expiry is a bad signature), then address, then time."""
    verify(command, key)
    if command.gateway_id != gateway_id:
        raise CommandRejectedError(
            Reason.WRONG_GATEWAY, f"addressed to {command.gateway_id!r}, not {gateway_id!r}"
        )
    if now > command.expires_at + skew:
        raise CommandRejectedError(Reason.EXPIRED, f"expired at {command.expires_at.isoformat()}")
    if now < command.issued_at - skew:
        raise CommandRejectedError(
            Reason.EXPIRED, f"issued in the future ({command.issued_at.isoformat()})"
        )


# ---- keys ------------------------------------------------------------------------------------


def public_key_text(key: ed25519.PublicKey) -> str:
    """The form gateway configs take: base64 of the raw 32-byte key."""
    return base64.b64encode(ed25519.raw_bytes(key)).decode()


def load_public_key(data: bytes | str) -> VerifyKey:
    """A public key from base64 of the raw 32 bytes or from a PEM `PUBLIC KEY` block."""
    try:
        return ed25519.load_public_key(data.decode() if isinstance(data, bytes) else data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not an Ed25519 public key: {exc}") from None
