"""Every bound of the wire at its edges: the largest value taken, the next one refused.

Payloads go through `decode`, as the cloud receives them; strings are also built in Python, as
the gateway makes them (a lone surrogate cannot travel as UTF-8 JSON, but a Python str holds
one).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from protocols.mqtt import bounds, downlink
from protocols.mqtt import commands as cmd
from protocols.mqtt import messages as msg
from protocols.mqtt.bounds import MAX_INT64, MAX_VALUE
from protocols.mqtt.topics import TopicError, check_gateway_id

TS = "2026-03-01T08:00:00+00:00"
READING = {"seq": 1, "meter": "m-1", "point": "energy", "value": 1.5, "ts": TS}
ENVELOPE = {"schema": 1, "gateway_id": "gw-1", "ts": TS}


def telemetry(**changes: Any) -> dict[str, Any]:
    return {**ENVELOPE, "seq": 1, "after": 0, "readings": [READING], **changes}


def events(**event: Any) -> dict[str, Any]:
    body = {"seq": 1, "type": "door.decision", "ts": TS, **event}
    return {**ENVELOPE, "seq": 1, "after": 0, "events": [body]}


def state(**changes: Any) -> dict[str, Any]:
    return {**ENVELOPE, "seq": 0, "online": True, **changes}


def result(**changes: Any) -> dict[str, Any]:
    return {**ENVELOPE, "command_id": str(uuid.UUID(int=1)), "status": "done", **changes}


def wire(model: type[BaseModel], payload: dict[str, Any]) -> BaseModel:
    return msg.decode(model, json.dumps(payload).encode())


def refused(model: type[BaseModel], payload: dict[str, Any]) -> str:
    with pytest.raises(msg.MessageError) as caught:
        wire(model, payload)
    assert caught.value.reason == "invalid", caught.value
    return caught.value.detail


# ---- integers: a signed 64-bit column on both sides ---------------------------------------

NEAR = MAX_INT64 - 1
TOP = {
    "after": NEAR,
    "epoch_start": NEAR,
    "seq": MAX_INT64,
    "readings": [{**READING, "seq": MAX_INT64}],
}
INTEGERS: list[tuple[str, type[BaseModel], Callable[[int], dict[str, Any]]]] = [
    ("telemetry seq", msg.Telemetry, lambda n: telemetry(seq=n, readings=[{**READING, "seq": n}])),
    ("telemetry after", msg.Telemetry, lambda n: telemetry(**{**TOP, "after": n - 1})),
    ("telemetry epoch", msg.Telemetry, lambda n: telemetry(epoch=n)),
    (
        "telemetry epoch_start",
        msg.Telemetry,
        lambda n: telemetry(**{**TOP, "epoch_start": n - 1}),
    ),
    ("state seq", msg.State, lambda n: state(seq=n)),
    ("state epoch", msg.State, lambda n: state(epoch=n)),
    ("state epoch_start", msg.State, lambda n: state(epoch_start=n)),
    ("state pending", msg.State, lambda n: state(pending=n)),
    ("state dropped", msg.State, lambda n: state(dropped=n)),
    ("state dropped_upto", msg.State, lambda n: state(dropped_upto=n)),
    ("state acked_seq", msg.State, lambda n: state(acked_seq=n)),
    ("ack stored_seq", msg.Ack, lambda n: {**ENVELOPE, "seq": 0, "stored_seq": n}),
]


@pytest.mark.parametrize(("name", "model", "build"), INTEGERS, ids=[i[0] for i in INTEGERS])
def test_integers_end_at_the_largest_signed_64_bit_value(
    name: str, model: type[BaseModel], build: Callable[[int], dict[str, Any]]
) -> None:
    """(`after` and `epoch_start` end one below: a record of the batch comes after them.)"""
    wire(model, build(MAX_INT64))
    assert name.rsplit(maxsplit=1)[-1] in refused(model, build(MAX_INT64 + 1))
    refused(model, build(-1))


def test_a_batch_at_the_top_of_the_seq_space_is_taken() -> None:
    top = telemetry(after=NEAR, epoch_start=NEAR, seq=MAX_INT64, readings=[
        {**READING, "seq": MAX_INT64}
    ])  # fmt: skip
    assert wire(msg.Telemetry, top).seq == MAX_INT64  # type: ignore[attr-defined]
    refused(msg.Telemetry, telemetry(seq=0, readings=[{**READING, "seq": 0}]))


def test_versions_of_downlink_state_are_64_bit_seqs() -> None:
    config = {**ENVELOPE, "seq": 1, "version": MAX_INT64}
    wire(downlink.Config, config)
    refused(downlink.Config, {**config, "version": MAX_INT64 + 1})
    refused(downlink.Config, {**config, "version": 0})


# ---- a reading's value: finite, within ±MAX_VALUE -----------------------------------------


def test_reading_values_are_finite_and_bounded() -> None:
    beyond = math.nextafter(MAX_VALUE, math.inf)
    for value in (MAX_VALUE, -MAX_VALUE, 0.0):
        wire(msg.Telemetry, telemetry(readings=[{**READING, "value": value}]))
    for value in (beyond, -beyond, 1e300):
        assert "value" in refused(msg.Telemetry, telemetry(readings=[{**READING, "value": value}]))
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        raw = json.dumps(telemetry(readings=[{**READING, "value": 0.25}])).replace("0.25", "%s")
        with pytest.raises(msg.MessageError, match="value"):
            msg.decode(msg.Telemetry, raw.encode() % literal)
    assert bounds.value_fits(MAX_VALUE)
    assert not any(map(bounds.value_fits, (beyond, math.nan, math.inf, -math.inf)))


def test_the_gateways_fast_encoder_keeps_the_same_bounds() -> None:
    template = msg.ReadingTemplate("m-1", "energy", "kWh")
    at = msg.json_ts(datetime(2026, 3, 1, tzinfo=UTC))
    wire(msg.Telemetry, telemetry(readings=[{**json.loads(template.number(MAX_VALUE, at)),
                                             "seq": 1}]))  # fmt: skip
    with pytest.raises(msg.MessageError, match="bounds"):
        template.number(math.nextafter(MAX_VALUE, math.inf), at)
    template.text("x" * bounds.MAX_TEXT_CHARS, at)
    for bad in ("x" * (bounds.MAX_TEXT_CHARS + 1), "a\x00b", "a\ud800b"):
        with pytest.raises(msg.MessageError, match="text"):
            template.text(bad, at)
    for meter in ("m\x00", "m\udfff"):
        with pytest.raises(msg.MessageError, match="meter"):
            msg.ReadingTemplate(meter, "energy", "kWh")


# ---- strings: bounded, no NUL, no lone surrogate ------------------------------------------

STRINGS: list[tuple[str, type[BaseModel], int, Callable[[str], dict[str, Any]]]] = [
    ("meter", msg.Telemetry, 64, lambda s: telemetry(readings=[{**READING, "meter": s}])),
    ("point", msg.Telemetry, 64, lambda s: telemetry(readings=[{**READING, "point": s}])),
    ("unit", msg.Telemetry, 16, lambda s: telemetry(readings=[{**READING, "unit": s}])),
    (
        "text",
        msg.Telemetry,
        bounds.MAX_TEXT_CHARS,
        lambda s: telemetry(
            readings=[{**{k: v for k, v in READING.items() if k != "value"}, "text": s}]
        ),
    ),
    ("type", msg.Events, 64, lambda s: events(type=s)),
    ("source", msg.Events, 64, lambda s: events(source=s)),
    ("event data", msg.Events, bounds.MAX_DETAIL_CHARS, lambda s: events(door=s)),
    ("event data in a list", msg.Events, bounds.MAX_DETAIL_CHARS, lambda s: events(tags=[s])),
    ("detail", cmd.CommandResult, bounds.MAX_DETAIL_CHARS, lambda s: result(detail=s)),
    ("data", cmd.CommandResult, bounds.MAX_DETAIL_CHARS, lambda s: result(data={"x": {"y": s}})),
    (
        "args",
        cmd.Command,
        cmd.MAX_ARG_CHARS,
        lambda s: {
            "schema": 1,
            "gateway_id": "gw-1",
            "id": str(uuid.UUID(int=1)),
            "name": "ping",
            "args": {"a": s},
            "issued_at": TS,
            "expires_at": "2026-03-01T08:05:00+00:00",
        },
    ),
]


@pytest.mark.parametrize(("name", "model", "limit", "build"), STRINGS, ids=[s[0] for s in STRINGS])
def test_strings_are_bounded_and_hold_no_nul_nor_lone_surrogate(
    name: str, model: type[BaseModel], limit: int, build: Callable[[str], dict[str, Any]]
) -> None:
    wire(model, build("字" * limit))  # characters, not bytes
    refused(model, build("x" * (limit + 1)))
    refused(model, build("a\x00b"))  # arrives as the JSON escape \u0000
    with pytest.raises(msg.MessageError, match=r"malformed|invalid"):
        msg.decode(model, json.dumps(build("a\ud800b")).encode())  # escaped: \ud800
    with pytest.raises(ValidationError):
        model.model_validate(build("a\ud800b"))  # as a gateway's Python str holds it
    with pytest.raises(ValidationError):
        model.model_validate(build("a\x00b"))


def test_keys_of_free_form_data_are_names() -> None:
    wire(msg.Events, events(**{"k" * 64: 1}))
    refused(msg.Events, events(**{"k" * 65: 1}))
    refused(msg.Events, events(**{"a\x00": 1}))
    refused(cmd.CommandResult, result(data={"x": {"k" * 65: 1}}))


def test_gateway_ids_follow_the_topic_rule() -> None:
    wire(msg.State, state(gateway_id="g" * 64))
    for bad in ("g" * 65, "gw-1\n", "gw\x00", "", "gw/1"):
        refused(msg.State, state(gateway_id=bad))
        refused(cmd.CommandResult, result(gateway_id=bad))
        with pytest.raises(TopicError):
            check_gateway_id(bad)


# ---- free-form data: JSON within the same bounds, nested a few levels -----------------------


def test_numbers_in_free_form_data_are_bounded() -> None:
    for value in (MAX_INT64, -(2**63), MAX_VALUE, -MAX_VALUE, True, None, 0.5):
        wire(msg.Events, events(x=value))
        wire(cmd.CommandResult, result(data={"x": [value]}))
    for value in (MAX_INT64 + 1, -(2**63) - 1, 10**400, math.nextafter(MAX_VALUE, math.inf)):
        refused(msg.Events, events(x=value))
        refused(cmd.CommandResult, result(data={"x": [value]}))
    raw = json.dumps(events(x=0.25)).replace("0.25", "NaN").encode()
    with pytest.raises(msg.MessageError, match="invalid"):
        msg.decode(msg.Events, raw)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_free_form_data_is_nested_at_most_max_depth() -> None:
    # the data object itself is the first level
    wire(msg.Events, events(x=nested(bounds.MAX_DATA_DEPTH - 1)))
    assert "deeper" in refused(msg.Events, events(x=nested(bounds.MAX_DATA_DEPTH)))
    wire(cmd.CommandResult, result(data={"x": nested(bounds.MAX_DATA_DEPTH - 1)}))
    refused(cmd.CommandResult, result(data={"x": nested(bounds.MAX_DATA_DEPTH)}))


def test_deeply_nested_json_is_malformed_not_a_crash() -> None:
    for payload in (b"[" * 100_000, b'{"a":' * 40_000 + b"1" + b"}" * 40_000):
        with pytest.raises(msg.MessageError) as caught:
            msg.decode(msg.Telemetry, payload)
        assert caught.value.reason in {"malformed", "invalid"}


# ---- times: any aware time whose UTC is a date --------------------------------------------


@pytest.mark.parametrize(
    "ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+00:31"]
)
def test_a_time_beyond_the_calendar_in_utc_is_invalid_not_a_crash(ts: str) -> None:
    assert "ts" in refused(msg.State, state(ts=ts))
    assert "ts" in refused(msg.Telemetry, telemetry(readings=[{**READING, "ts": ts}]))


def test_the_first_and_last_utc_times_are_taken() -> None:
    wire(msg.State, state(ts="0001-01-01T00:00:00+00:00"))
    wire(msg.State, state(ts="9999-12-31T23:59:59.999999+00:00"))
    wire(msg.State, state(ts="0001-01-01T08:00:00+08:00"))


# ---- what the gateway writes for people -----------------------------------------------------


def test_printable_makes_any_text_fit_the_wire() -> None:
    assert bounds.printable("a\x00b\ud800c", 10) == "a\ufffdb\ufffdc"
    assert bounds.printable("x" * 2000, bounds.MAX_DETAIL_CHARS) == "x" * bounds.MAX_DETAIL_CHARS
    fitted = bounds.printable("boom \x00 \udcff" * 500, bounds.MAX_DETAIL_CHARS)
    wire(cmd.CommandResult, result(detail=fitted))
