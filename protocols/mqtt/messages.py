"""Versioned message bodies. Every payload carries `schema`, `gateway_id`, `seq` and `ts` (UTC).

Uplink records (readings, door events, ...) share one per-gateway `seq` space. A batch message
carries records of one kind in ascending `seq` and declares `after`: every seq in
`(after, seq]` is either in this message or does not exist (deliberately dropped by the
gateway, or never written). The cloud may therefore advance its contiguous high-water mark from
`h` to the message's `seq` whenever `after <= h`, whatever kinds came before.

Records are numbered within an `epoch`: a random id the gateway's store draws each time it is
opened, declared with `epoch_start`, the last seq before the epoch's first record. The cloud
keys records and acknowledgements on `(gateway_id, epoch, seq)`, so records written after a
restart are never taken for resends of older ones, even when the store was restored from a
backup or wiped (seqs start again at 1). Its mark for an epoch starts at `epoch_start`. Epoch 0
is a store made before epochs existed.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from protocols.errors import AnjuError
from protocols.mqtt.bounds import (
    CLEAN,
    MAX_INT64,
    MAX_TEXT_CHARS,
    Count,
    Detail,
    Name,
    Seq,
    Text,
    Value,
    check_data,
    check_text,
    value_fits,
)
from protocols.mqtt.topics import GATEWAY_ID

SCHEMA_VERSION = 1
MAX_PAYLOAD_BYTES = 256 * 1024
# One record must always fit in a message with room to spare for the envelope.
MAX_RECORD_BYTES = 16 * 1024
ENVELOPE_RESERVE_BYTES = 512


class MessageError(AnjuError):
    """A payload could not be decoded; `reason` is a short machine-readable cause."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Quality(StrEnum):
    GOOD = "good"
    UNCERTAIN = "uncertain"  # e.g. a counter ran backwards without wrapping (swap, glitch)
    BAD = "bad"  # the meter sent NaN/inf; the value is 0 and means nothing


class RecordKind(StrEnum):
    """What an outbox row holds; each kind travels in its own batch message."""

    READING = "reading"
    EVENT = "event"


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is a year before the first
        raise ValueError("the time is out of range in UTC") from None


def _iso(value: datetime) -> str:
    """`2026-01-01T00:00:00+00:00`, as `datetime.isoformat` writes it (pydantic would write Z)."""
    return value.isoformat()


class _Model(BaseModel):
    # Validators are built on first use (here and in the gateway's other model bases): a
    # gateway imports many models it never validates (doors, access lists, remote configs).
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)


MAX_EPOCH = MAX_INT64
Epoch = Count
GatewayId = Annotated[str, Field(pattern=GATEWAY_ID)]


def _is_none(value: object) -> bool:
    return value is None


class ReadingBody(_Model):
    """One decoded value of one meter point, stamped with the gateway's clock.

    A number travels in `value`; text (a serial number, a firmware version) in `text`, added
    within schema 1: exactly one of the two is present, and an absent one is left out of the
    JSON, so a numeric reading is the same bytes it was before `text` existed.
    """

    meter: Name
    point: Name
    value: Annotated[Value | None, Field(exclude_if=_is_none)] = None
    unit: Annotated[str, Field(max_length=16, pattern=CLEAN)] = ""
    ts: AwareDatetime
    quality: Quality = Quality.GOOD
    text: Annotated[Text | None, Field(exclude_if=_is_none)] = None

    _ts_utc = field_validator("ts")(_utc)
    _ts_iso = field_serializer("ts")(_iso)

    @model_validator(mode="after")
    def _one_value(self) -> ReadingBody:
        if (self.value is None) == (self.text is None):
            raise ValueError("a reading has either a numeric 'value' or a 'text'")
        return self


class Reading(ReadingBody):
    seq: Seq


class EventBody(BaseModel):
    """Something that happened at the gateway (a door decision, a meter alarm).

    Producers pass a flat dict; fields beyond `type`, `source` and `ts` are kept as they are
    (JSON values within the wire's bounds) and stored by the cloud as the event's data.
    """

    model_config = ConfigDict(frozen=True, extra="allow", defer_build=True)

    type: Name
    source: Name = "gateway"
    ts: AwareDatetime

    _ts_utc = field_validator("ts")(_utc)
    _ts_iso = field_serializer("ts")(_iso)

    @model_validator(mode="after")
    def _bounded_data(self) -> EventBody:
        check_data(self.model_extra or {})
        return self

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Event(EventBody):
    seq: Seq


RECORD_BODIES: dict[RecordKind, type[ReadingBody] | type[EventBody]] = {
    RecordKind.READING: ReadingBody,
    RecordKind.EVENT: EventBody,
}


class _Envelope(_Model):
    schema_: Annotated[Literal[1], Field(alias="schema")] = 1
    gateway_id: GatewayId
    epoch: Epoch = 0
    seq: Count
    ts: AwareDatetime

    _ts_utc = field_validator("ts")(_utc)
    _ts_iso = field_serializer("ts")(_iso)


def _check_batch(after: int, seq: int, seqs: list[int], epoch_start: int) -> None:
    if seqs[0] <= epoch_start:
        raise ValueError(f"first record seq {seqs[0]} is not after epoch_start {epoch_start}")
    if seqs[0] <= after:
        raise ValueError(f"first record seq {seqs[0]} is not after {after}")
    if any(b <= a for a, b in itertools.pairwise(seqs)):
        raise ValueError("record seqs are not strictly ascending")
    if seqs[-1] != seq:
        raise ValueError(f"seq {seq} is not the last record's seq {seqs[-1]}")


class Telemetry(_Envelope):
    """A batch of readings covering seqs `(after, seq]`."""

    after: Count
    epoch_start: Count = 0
    readings: Annotated[list[Reading], Field(min_length=1)]

    @model_validator(mode="after")
    def _contiguous(self) -> Telemetry:
        _check_batch(self.after, self.seq, [r.seq for r in self.readings], self.epoch_start)
        return self


class Events(_Envelope):
    """A batch of events covering seqs `(after, seq]`."""

    after: Count
    epoch_start: Count = 0
    events: Annotated[list[Event], Field(min_length=1)]

    @model_validator(mode="after")
    def _contiguous(self) -> Events:
        _check_batch(self.after, self.seq, [e.seq for e in self.events], self.epoch_start)
        return self


class State(_Envelope):
    """Retained gateway state; the Will publishes the same with `online: false`.

    `seq` is the newest record the gateway has written; `epoch` and `epoch_start` are the epoch
    it writes under now; `dropped` counts records the disk budget forced out before the cloud
    stored them (all with seq <= `dropped_upto`).
    """

    online: bool
    epoch_start: Count = 0
    pending: Count = 0
    dropped: Count = 0
    dropped_upto: Count = 0
    acked_seq: Count = 0
    # The access list version the doors decide from (docs/access.md); left out when none, so
    # a gateway without one sends what clouds before access lists read.
    access_version: Annotated[Count | None, Field(exclude_if=_is_none)] = None
    # The remote configuration applied (docs/fleet.md), and why the newest one offered was not:
    # left out when none, as `access_version`.
    config_version: Annotated[Count | None, Field(exclude_if=_is_none)] = None
    config_error: Annotated[Detail | None, Field(exclude_if=_is_none)] = None


class Ack(_Envelope):
    """Cloud → gateway: every uplink record of `epoch` with `seq <= stored_seq` is stored."""

    stored_seq: Count


def encode(message: BaseModel) -> bytes:
    data = message.model_dump_json(by_alias=True).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise MessageError("oversize", f"{len(data)} bytes > {MAX_PAYLOAD_BYTES}")
    return data


M = TypeVar("M", bound=BaseModel)


def decode(model: type[M], payload: bytes) -> M:
    """Validate a payload; on failure say why in one of a few machine-readable reasons."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageError("oversize", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        error = exc
    try:
        raw = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep
        raise MessageError("malformed", f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MessageError("malformed", "payload is not a JSON object")
    if raw.get("schema") != SCHEMA_VERSION:
        raise MessageError("unknown_schema", f"schema {raw.get('schema')!r} is not supported")
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    raise MessageError("invalid", f"{where}: {first['msg']}") from None


# ---- the gateway's fast path: records are validated once when stored, then spliced ----------

_BODY_LISTS: dict[RecordKind, TypeAdapter[list[Any]]] = {
    RecordKind.READING: TypeAdapter(list[ReadingBody]),
    RecordKind.EVENT: TypeAdapter(list[EventBody]),
}
BATCH_FIELD: dict[RecordKind, str] = {RecordKind.READING: "readings", RecordKind.EVENT: "events"}


def encode_records(kind: RecordKind, payloads: Sequence[dict[str, Any]]) -> list[str]:
    """Validate records of one kind and return each as compact JSON (without `seq`)."""
    try:
        bodies = _BODY_LISTS[kind].validate_python(payloads)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MessageError("invalid", f"{kind} record {where}: {first['msg']}") from None
    out = [body.model_dump_json() for body in bodies]
    for text in out:
        if len(text) > MAX_RECORD_BYTES:
            raise MessageError("oversize", f"{kind} record of {len(text)} bytes")
    return out


class ReadingTemplate:
    """Compact JSON of one meter point's readings, the same as `encode_records` would store.

    The poll loop stores thousands of readings a second; validating each through pydantic cost
    more than reading it. The fixed parts (meter, point, unit) are validated once here, a value
    is checked per reading, and the text is spliced (a test holds it to the model's output).
    """

    __slots__ = ("_meter", "_point", "_tail")

    def __init__(self, meter: str, point: str, unit: str) -> None:
        try:
            ReadingBody(meter=meter, point=point, value=0.0, unit=unit, ts=_EPOCH)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise MessageError("invalid", f"reading {where}: {first['msg']}") from None
        # One string per meter, per point name and per unit, not per meter point: a gateway
        # holds a template for every point of every meter.
        self._meter = sys.intern('{"meter":%s,' % _json(meter))  # noqa: UP031
        self._point = sys.intern('"point":%s,' % _json(point))  # noqa: UP031
        self._tail = sys.intern(',"unit":%s,"ts":"' % _json(unit))  # noqa: UP031

    def number(self, value: float, ts: str, quality: Quality = Quality.GOOD) -> str:
        """`ts` comes from `json_ts`; `value` must fit (`value_fits`: a meter's NaN or wild
        number is the caller's to turn into a `bad` reading)."""
        if not value_fits(value):
            raise MessageError("invalid", f"reading value {value!r} is out of bounds")
        return (
            f'{self._meter}{self._point}"value":{float(value)!r}'
            f'{self._tail}{ts}","quality":"{quality}"}}'
        )

    def text(self, text: str, ts: str, quality: Quality = Quality.GOOD) -> str:
        try:
            check_text(text, MAX_TEXT_CHARS)
        except ValueError as exc:
            raise MessageError("invalid", f"reading text: {exc}") from None
        return (
            f"{self._meter}{self._point[:-1]}{self._tail}{ts}"
            f'","quality":"{quality}","text":{_json(text)}}}'
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _json(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def json_ts(value: datetime) -> str:
    """A reading's `ts` as stored: UTC, isoformat (an aware datetime is required)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise MessageError("invalid", "reading ts has no timezone")
    return _utc(value).isoformat()


def record_size(body_json: str) -> int:
    """Bytes a stored record takes inside a batch message (seq and separator included)."""
    return len(body_json) + 24


def encode_batch(
    kind: RecordKind,
    *,
    gateway_id: str,
    after: int,
    ts: datetime,
    records: Sequence[tuple[int, str]],
    epoch: int = 0,
    epoch_start: int = 0,
) -> bytes:
    """Build a Telemetry/Events payload from `(seq, body_json)` rows without re-validating.

    Bodies come from `encode_records`, so the result decodes to the matching model.
    """
    if not records:
        raise ValueError("a batch needs at least one record")
    items = ",".join(f'{{"seq":{seq},{body[1:]}' for seq, body in records)
    head = json.dumps(
        {
            "schema": SCHEMA_VERSION,
            "gateway_id": gateway_id,
            "epoch": epoch,
            "seq": records[-1][0],
            "ts": _utc(ts).isoformat(),
            "after": after,
            "epoch_start": epoch_start,
        },
        separators=(",", ":"),
    )
    return f'{head[:-1]},"{BATCH_FIELD[kind]}":[{items}]}}'.encode()
