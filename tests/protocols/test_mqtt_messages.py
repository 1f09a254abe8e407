"""The wire contract: topics, batch envelopes and the reasons bad input is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.mqtt import messages as msg
from protocols.mqtt.bounds import MAX_TEXT_CHARS
from protocols.mqtt.topics import Kind, TopicError, parse, subscription, topic
from tests.protocols.wire import texts, values

TS = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def reading(i: int) -> dict[str, object]:
    return {"meter": f"m-{i}", "point": "energy", "value": i * 0.5, "unit": "kWh", "ts": TS}


def test_topics_round_trip_and_refuse_strangers() -> None:
    name = topic("gw-1", Kind.TELEMETRY)
    assert name == "anju/v1/gw-1/up/telemetry"
    assert parse(name).gateway_id == "gw-1"
    assert parse(name).kind is Kind.TELEMETRY
    for bad in ("anju/v1/gw-1/up/nope", "anju/v2/gw-1/up/telemetry", "anju/v1/+/up/telemetry"):
        with pytest.raises(TopicError):
            parse(bad)


def test_subscriptions_plain_and_shared() -> None:
    assert subscription(Kind.STATE) == "anju/v1/+/up/state"
    assert subscription(Kind.TELEMETRY, share_group="g1") == "$share/g1/anju/v1/+/up/telemetry"
    with pytest.raises(TopicError):
        subscription(Kind.TELEMETRY, share_group="a/b")


@given(
    st.lists(
        st.tuples(
            values,
            texts(min_size=1, max_size=64).filter(lambda s: s.strip() == s),
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=1, max_value=5),
)
def test_spliced_batch_decodes_to_the_same_records(
    values: list[tuple[float, str]], after: int, stride: int
) -> None:
    payloads = [
        {"meter": meter, "point": "p", "value": v, "ts": TS + timedelta(seconds=i)}
        for i, (v, meter) in enumerate(values)
    ]
    bodies = msg.encode_records(msg.RecordKind.READING, payloads)
    seqs = [after + 1 + i * stride for i in range(len(bodies))]
    raw = msg.encode_batch(
        msg.RecordKind.READING,
        gateway_id="gw-1",
        after=after,
        ts=TS,
        records=list(zip(seqs, bodies, strict=True)),
        epoch=9,
        epoch_start=after // 2,
    )
    decoded = msg.decode(msg.Telemetry, raw)
    assert (decoded.after, decoded.epoch, decoded.epoch_start) == (after, 9, after // 2)
    assert decoded.seq == seqs[-1]
    assert [r.seq for r in decoded.readings] == seqs
    assert [(r.meter, r.value) for r in decoded.readings] == [(m, v) for v, m in values]


def test_events_batch_and_local_times_become_utc() -> None:
    local = datetime(2026, 3, 1, 16, 0, tzinfo=timezone(timedelta(hours=8)))
    bodies = msg.encode_records(
        msg.RecordKind.EVENT,
        [{"type": "door.open", "source": "door-1", "ts": local, "by": "card"}],
    )
    raw = msg.encode_batch(
        msg.RecordKind.EVENT, gateway_id="gw-1", after=4, ts=local, records=[(5, bodies[0])]
    )
    events = msg.decode(msg.Events, raw)
    assert events.events[0].ts == TS
    assert events.events[0].ts.utcoffset() == timedelta(0)
    assert events.events[0].data == {"by": "card"}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "malformed"),
        (b"[1, 2]", "malformed"),
        (b'{"schema": 2, "gateway_id": "g"}', "unknown_schema"),
        (b'{"schema": 1, "gateway_id": "g"}', "invalid"),
        (b"x" * (msg.MAX_PAYLOAD_BYTES + 1), "oversize"),
    ],
)
def test_decode_names_the_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(msg.MessageError) as caught:
        msg.decode(msg.Telemetry, payload)
    assert caught.value.reason == reason


def test_batch_must_cover_its_span_in_order() -> None:
    body = {"meter": "m", "point": "p", "value": 1.0, "ts": TS.isoformat()}
    base = {"schema": 1, "gateway_id": "g", "ts": TS.isoformat()}
    ok = {**base, "seq": 3, "after": 1, "readings": [{**body, "seq": 2}, {**body, "seq": 3}]}
    msg.Telemetry.model_validate(ok)
    for bad in (
        {**ok, "after": 2},  # first record not after `after`
        {**ok, "seq": 4},  # seq is not the last record's
        {**ok, "readings": [{**body, "seq": 3}, {**body, "seq": 2}]},  # not ascending
        {**ok, "epoch_start": 2},  # a record not after the start of its epoch
    ):
        with pytest.raises(ValueError, match="seq"):
            msg.Telemetry.model_validate(bad)


def test_records_are_validated_before_they_are_stored() -> None:
    with pytest.raises(msg.MessageError, match="value"):
        msg.encode_records(msg.RecordKind.READING, [{**reading(1), "value": float("nan")}])
    with pytest.raises(msg.MessageError, match="ts"):
        msg.encode_records(msg.RecordKind.READING, [{**reading(1), "ts": datetime(2026, 1, 1)}])  # noqa: DTZ001
    with pytest.raises(msg.MessageError, match="oversize"):
        msg.encode_records(
            msg.RecordKind.EVENT,
            [{"type": "t", "source": "s", "ts": TS, "x": ["y" * 1000] * 17}],  # 17 KB
        )


def test_flat_event_payloads_keep_every_field() -> None:
    (body,) = msg.encode_records(
        msg.RecordKind.EVENT,
        [{"type": "door.decision", "door": "front", "verdict": "grant", "score": 0.8, "ts": TS}],
    )
    raw = msg.encode_batch(
        msg.RecordKind.EVENT, gateway_id="g", after=0, ts=TS, records=[(1, body)]
    )
    (event,) = msg.decode(msg.Events, raw).events
    assert event.type == "door.decision"
    assert event.data == {"door": "front", "verdict": "grant", "score": 0.8}


# ---- text readings and the poller's fast encoder --------------------------------------------


def test_a_reading_carries_a_number_or_a_text_never_both() -> None:
    (number, text) = msg.encode_records(
        msg.RecordKind.READING,
        [reading(1), {"meter": "m", "point": "serial", "text": "SDM-1234", "ts": TS}],
    )
    assert "text" not in json.loads(number)  # numeric readings: the bytes of before `text`
    assert number == (
        '{"meter":"m-1","point":"energy","value":0.5,"unit":"kWh",'
        '"ts":"2026-03-01T08:00:00+00:00","quality":"good"}'
    )
    assert "value" not in json.loads(text)
    raw = msg.encode_batch(
        msg.RecordKind.READING, gateway_id="g", after=0, ts=TS, records=[(1, number), (2, text)]
    )
    decoded = msg.decode(msg.Telemetry, raw).readings
    assert [(r.value, r.text) for r in decoded] == [(0.5, None), (None, "SDM-1234")]
    for bad in ({**reading(1), "text": "x"}, {"meter": "m", "point": "p", "ts": TS}):
        with pytest.raises(msg.MessageError, match="either"):
            msg.encode_records(msg.RecordKind.READING, [bad])


names = texts(min_size=1, max_size=64)


@given(
    names,
    names,
    texts(max_size=16),
    values,
    st.sampled_from(list(msg.Quality)),
    texts(max_size=MAX_TEXT_CHARS),
    st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis adds the zone
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]),
    ),
)
def test_reading_template_stores_what_the_model_would(
    meter: str,
    point: str,
    unit: str,
    value: float,
    quality: msg.Quality,
    text: str,
    ts: datetime,
) -> None:
    template = msg.ReadingTemplate(meter, point, unit)
    at = msg.json_ts(ts)
    base = {"meter": meter, "point": point, "unit": unit, "ts": ts, "quality": quality}
    expected = msg.encode_records(
        msg.RecordKind.READING, [{**base, "value": value}, {**base, "text": text}]
    )
    got = [template.number(value, at, quality), template.text(text, at, quality)]
    assert [json.loads(g) for g in got] == [json.loads(e) for e in expected]
    assert [msg.ReadingBody.model_validate_json(g) for g in got] == [
        msg.ReadingBody.model_validate_json(e) for e in expected
    ]


def test_reading_template_refuses_what_the_model_refuses() -> None:
    with pytest.raises(msg.MessageError, match="unit"):
        msg.ReadingTemplate("m", "p", "u" * 17)
    with pytest.raises(msg.MessageError, match="meter"):
        msg.ReadingTemplate("", "p", "")
    template = msg.ReadingTemplate("m", "p", "V")
    with pytest.raises(msg.MessageError, match="bounds"):
        template.number(float("inf"), msg.json_ts(TS))
    with pytest.raises(msg.MessageError, match="text"):
        template.text("x" * (MAX_TEXT_CHARS + 1), msg.json_ts(TS))
    with pytest.raises(msg.MessageError, match="timezone"):
        msg.json_ts(datetime(2026, 1, 1))  # noqa: DTZ001
