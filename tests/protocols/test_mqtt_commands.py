"""Signed commands: the canonical bytes, sign/verify, and the order refusals are reported in."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import ConfigError
from protocols.mqtt import commands as cmd
from protocols.mqtt import messages as msg
from tests.protocols.wire import texts, values

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SKEW = timedelta(seconds=30)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ID = uuid.UUID("0c6f1c2e-6a3c-4e8b-9d41-0f6b3d2a1e55")


def command(**changes: Any) -> cmd.Command:
    fields: dict[str, Any] = {
        "gateway_id": "gw-1",
        "id": ID,
        "name": "door.unlock",
        "args": {"door": "d-1", "hold_s": 5.0},
        "issued_at": T0,
        "expires_at": T0 + timedelta(minutes=5),
    }
    return cmd.Command(**(fields | changes))


def check(c: cmd.Command, *, now: datetime = T0, gateway_id: str = "gw-1") -> None:
    cmd.check(c, KEY.public_key(), gateway_id=gateway_id, now=now, skew=SKEW)


def refusal(c: cmd.Command, **kwargs: Any) -> cmd.Reason:
    with pytest.raises(cmd.CommandRejectedError) as caught:
        check(c, **kwargs)
    return caught.value.reason


def test_signed_bytes_are_the_documented_canonical_form() -> None:
    expected = (
        b"anju-cmd-v1\n"
        b'{"args":{"door":"d-1","hold_s":5.0},"expires_at":"2026-03-01T08:05:00+00:00",'
        b'"gateway_id":"gw-1","id":"0c6f1c2e-6a3c-4e8b-9d41-0f6b3d2a1e55",'
        b'"issued_at":"2026-03-01T08:00:00+00:00","name":"door.unlock","schema":1}'
    )
    assert cmd.signed_bytes(command()) == expected
    # the signature is not part of what it signs
    assert cmd.signed_bytes(cmd.sign(command(), KEY)) == expected


def test_round_trip_over_the_wire_still_verifies() -> None:
    signed = cmd.sign(command(), KEY)
    wire = msg.encode(signed)
    decoded = msg.decode(cmd.Command, wire)
    assert decoded == signed
    check(decoded)


def test_local_times_are_signed_as_utc() -> None:
    cst = datetime(2026, 3, 2, 0, 0, tzinfo=timezone(timedelta(hours=8)))
    signed = cmd.sign(command(issued_at=cst, expires_at=cst + timedelta(minutes=1)), KEY)
    assert b'"issued_at":"2026-03-01T16:00:00+00:00"' in cmd.signed_bytes(signed)
    check(signed, now=datetime(2026, 3, 1, 16, 0, 30, tzinfo=UTC))


TAMPERED = {
    "gateway_id": "gw-2",
    "id": uuid.UUID(int=1),
    "name": "ping",
    "args": {"door": "d-2", "hold_s": 5.0},
    "issued_at": T0 - timedelta(seconds=1),
    "expires_at": T0 + timedelta(hours=1),
}


@pytest.mark.parametrize("field", sorted(TAMPERED))
def test_tampering_any_field_breaks_the_signature(field: str) -> None:
    signed = cmd.sign(command(), KEY)
    raw = json.loads(msg.encode(signed))
    value = TAMPERED[field]
    raw[field] = value.isoformat() if isinstance(value, datetime) else value
    if isinstance(value, uuid.UUID):
        raw[field] = str(value)
    tampered = cmd.Command.model_validate_json(json.dumps(raw))
    assert refusal(tampered, gateway_id=tampered.gateway_id) is cmd.Reason.BAD_SIGNATURE


def test_refusals_name_their_reason() -> None:
    assert refusal(command()) is cmd.Reason.UNSIGNED
    assert refusal(cmd.sign(command(), OTHER)) is cmd.Reason.BAD_SIGNATURE
    garbled = cmd.sign(command(), KEY).model_copy(update={"signature": "not base64!"})
    assert refusal(garbled) is cmd.Reason.BAD_SIGNATURE
    short = cmd.sign(command(), KEY).model_copy(update={"signature": "AAAA"})
    assert refusal(short) is cmd.Reason.BAD_SIGNATURE
    signed = cmd.sign(command(), KEY)
    assert refusal(signed, gateway_id="gw-2") is cmd.Reason.WRONG_GATEWAY
    with pytest.raises(cmd.CommandRejectedError) as no_key:
        cmd.check(signed, None, gateway_id="gw-1", now=T0, skew=SKEW)
    assert no_key.value.reason is cmd.Reason.UNSIGNED


def test_expiry_allows_the_clock_skew_and_no_more() -> None:
    signed = cmd.sign(command(), KEY)
    check(signed, now=signed.expires_at + SKEW)
    assert refusal(signed, now=signed.expires_at + SKEW + timedelta(microseconds=1)) is (
        cmd.Reason.EXPIRED
    )
    check(signed, now=T0 - SKEW)
    assert refusal(signed, now=T0 - SKEW - timedelta(seconds=1)) is cmd.Reason.EXPIRED


def test_a_command_lives_at_most_a_day_and_after_it_is_issued() -> None:
    with pytest.raises(ValueError, match="expires_at"):
        command(expires_at=T0 + cmd.MAX_TTL + timedelta(seconds=1))
    with pytest.raises(ValueError, match="expires_at"):
        command(expires_at=T0)
    with pytest.raises(ValueError, match="args"):
        command(args={f"k{i}": i for i in range(cmd.MAX_ARGS + 1)})
    with pytest.raises(ValueError, match="args"):
        command(args={"nested": {"a": 1}})


def result(**changes: Any) -> cmd.CommandResult:
    fields: dict[str, Any] = {"gateway_id": "gw-1", "command_id": ID, "status": "done", "ts": T0}
    return cmd.CommandResult(**(fields | changes))


def test_result_rules() -> None:
    done = result()
    assert msg.decode(cmd.CommandResult, msg.encode(done)) == done
    with pytest.raises(ValueError, match="reason"):
        result(status=cmd.Status.REJECTED)
    with pytest.raises(ValueError, match="reason"):
        result(reason=cmd.Reason.EXPIRED)
    with pytest.raises(ValueError, match="no id"):
        result(command_id=None, status="rejected", reason=cmd.Reason.EXPIRED)
    assert result(command_id=None, status="rejected", reason="malformed").command_id is None
    with pytest.raises(ValueError, match="larger"):
        result(data={"x": ["y" * 1000] * 9})  # 9 KB


def test_public_keys_load_from_base64_or_pem() -> None:
    public = KEY.public_key()
    text = cmd.public_key_text(public)
    assert len(base64.b64decode(text)) == 32
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for form in (text, text.encode() + b"\n", pem, pem.decode()):
        assert cmd.public_key_text(cmd.load_public_key(form)) == text
    for bad in (
        "",
        "AAAA",
        "not base64",
        "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----",
    ):
        with pytest.raises(ConfigError):
            cmd.load_public_key(bad)


scalars = st.one_of(
    texts(max_size=cmd.MAX_ARG_CHARS),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    values,
    st.none(),
)


@given(
    gateway_id=st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,20}\Z"),
    name=st.from_regex(r"\A[a-z][a-z0-9_]{0,8}(\.[a-z][a-z0-9_]{0,8}){0,2}\Z"),
    args=st.dictionaries(
        st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,10}\Z"), scalars, max_size=cmd.MAX_ARGS
    ),
    offset_s=st.integers(min_value=-(10**9), max_value=10**9),
    ttl_s=st.integers(min_value=1, max_value=int(cmd.MAX_TTL.total_seconds())),
    micros=st.integers(min_value=0, max_value=999_999),
)
def test_any_command_survives_the_wire_and_verifies_only_with_its_key(
    gateway_id: str, name: str, args: dict[str, Any], offset_s: int, ttl_s: int, micros: int
) -> None:
    issued = T0 + timedelta(seconds=offset_s, microseconds=micros)
    c = cmd.Command(
        gateway_id=gateway_id,
        id=uuid.uuid4(),
        name=name,
        args=args,
        issued_at=issued,
        expires_at=issued + timedelta(seconds=ttl_s),
    )
    decoded = msg.decode(cmd.Command, msg.encode(cmd.sign(c, KEY)))
    assert decoded.args == args
    assert [type(v) for v in decoded.args.values()] == [type(v) for v in args.values()]
    cmd.check(decoded, KEY.public_key(), gateway_id=gateway_id, now=issued, skew=SKEW)
    with pytest.raises(cmd.CommandRejectedError):
        cmd.check(decoded, OTHER.public_key(), gateway_id=gateway_id, now=issued, skew=SKEW)


def test_non_ascii_arguments_are_signed_as_utf_8() -> None:
    """The canonical form keeps Chinese text as UTF-8, so a gateway in any language agrees."""
    c = command(args={"room": "三号楼 502"})
    expected = (
        b"anju-cmd-v1\n"
        + '{"args":{"room":"三号楼 502"},"expires_at":"2026-03-01T08:05:00+00:00",'.encode()
        + b'"gateway_id":"gw-1","id":"0c6f1c2e-6a3c-4e8b-9d41-0f6b3d2a1e55",'
        + b'"issued_at":"2026-03-01T08:00:00+00:00","name":"door.unlock","schema":1}'
    )
    assert cmd.signed_bytes(c) == expected


def test_a_signature_with_characters_outside_base64_is_refused() -> None:
    signed = cmd.sign(command(), KEY)
    assert signed.signature is not None
    padded = signed.model_copy(update={"signature": "*" + signed.signature})
    with pytest.raises(cmd.CommandRejectedError, match="not base64") as caught:
        check(padded)
    assert caught.value.reason is cmd.Reason.BAD_SIGNATURE
    assert caught.value.detail == "the signature is not base64"
    assert str(caught.value) == "bad_signature: the signature is not base64"
    with pytest.raises(ConfigError):
        cmd.load_public_key("*" + cmd.public_key_text(KEY.public_key()))
