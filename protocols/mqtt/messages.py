"""Versioned message bodies. Every payload carries `schema`, `gateway_id`, `seq` and `ts` (UTC)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from protocols.errors import AnjuError

SCHEMA_VERSION = 1
MAX_PAYLOAD_BYTES = 256 * 1024


class MessageError(AnjuError):
    """A payload could not be decoded; `reason` is a short machine-readable cause."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Quality(StrEnum):
    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reading(_Model):
    """One decoded value of one meter point, stamped with the gateway's clock."""

    seq: Annotated[int, Field(ge=1)]
    meter: Annotated[str, Field(min_length=1, max_length=64)]
    point: Annotated[str, Field(min_length=1, max_length=64)]
    value: float
    unit: str = ""
    ts: AwareDatetime
    quality: Quality = Quality.GOOD

    _ts_utc = field_validator("ts")(_utc)


class Telemetry(_Model):
    schema_: Annotated[Literal[1], Field(alias="schema")] = 1
    gateway_id: str
    seq: Annotated[int, Field(ge=1)]
    ts: AwareDatetime
    # Every record with seq <= base_seq is already acknowledged or was deliberately dropped by
    # the gateway, so the cloud may advance its high-water mark across that gap.
    base_seq: Annotated[int, Field(ge=0)] = 0
    readings: Annotated[list[Reading], Field(min_length=1)]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    _ts_utc = field_validator("ts")(_utc)


class Ack(_Model):
    """Cloud → gateway: every uplink record with `seq <= stored_seq` is stored."""

    schema_: Annotated[Literal[1], Field(alias="schema")] = 1
    gateway_id: str
    seq: Annotated[int, Field(ge=0)]
    ts: AwareDatetime
    stored_seq: Annotated[int, Field(ge=0)]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def encode(message: BaseModel) -> bytes:
    data = message.model_dump_json(by_alias=True).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise MessageError("oversize", f"{len(data)} bytes > {MAX_PAYLOAD_BYTES}")
    return data


M = TypeVar("M", bound=BaseModel)


def decode(model: type[M], payload: bytes) -> M:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageError("oversize", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError("malformed", f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MessageError("malformed", "payload is not a JSON object")
    if raw.get("schema") != SCHEMA_VERSION:
        raise MessageError("unknown_schema", f"schema {raw.get('schema')!r} is not supported")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MessageError("invalid", f"{where}: {first['msg']}") from None
