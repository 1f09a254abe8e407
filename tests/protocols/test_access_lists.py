"""Access lists: bounds, signatures, addresses, versions and deltas, each attack performed."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from protocols.access import schema
from protocols.access.schema import AccessList, Removed, RevocationKind, StaleDeltaError, apply
from protocols.access.signing import (
    DOMAIN,
    AccessRefusedError,
    Refusal,
    admit,
    canonical_body,
    decode_signed,
    encode_signed,
)
from protocols.mqtt.commands import DOMAIN as COMMAND_DOMAIN
from tests.access_lists import (
    GATEWAY,
    KEY,
    OTHER_KEY,
    T0,
    access_list,
    door,
    face,
    pin,
    revoke,
    right,
)

PUBLIC = KEY.public_key()


def full() -> AccessList:
    return access_list(
        1,
        credentials=[face("c-face", "s-ann", 1), pin("c-pin", "s-ann", "1203")],
        rights=[right("r-1", "s-ann", "front", "garage")],
        revocations=[revoke(RevocationKind.SUBJECT, "s-old")],
    )


def refused(payload: bytes, reason: Refusal, gateway_id: str = GATEWAY) -> None:
    with pytest.raises(AccessRefusedError) as caught:
        decode_signed(payload, PUBLIC, gateway_id=gateway_id)
    assert caught.value.reason is reason


def test_a_signed_list_round_trips_and_its_body_is_canonical() -> None:
    sent = full()
    payload = encode_signed(sent, KEY)
    assert decode_signed(payload, PUBLIC, gateway_id=GATEWAY) == sent
    body = payload.split(b"\n", 1)[1]
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    assert body == canonical_body(AccessList.model_validate_json(body))


def test_a_list_signed_by_another_key_is_refused() -> None:
    refused(encode_signed(full(), OTHER_KEY), Refusal.BAD_SIGNATURE)


def test_a_tampered_body_is_refused_before_it_is_parsed() -> None:
    payload = encode_signed(full(), KEY)
    refused(payload.replace(b'"version":1', b'"version":9'), Refusal.BAD_SIGNATURE)
    refused(payload + b" ", Refusal.BAD_SIGNATURE)


def test_unsigned_or_garbled_signatures_are_refused() -> None:
    body = canonical_body(full())
    refused(body, Refusal.UNSIGNED)
    refused(b"!" * 88 + b"\n" + body, Refusal.BAD_SIGNATURE)
    with pytest.raises(AccessRefusedError) as caught:
        decode_signed(encode_signed(full(), KEY), None, gateway_id=GATEWAY)
    assert caught.value.reason is Refusal.UNSIGNED


def test_a_command_signature_never_verifies_a_list() -> None:
    body = canonical_body(full())
    forged = base64.b64encode(KEY.sign(COMMAND_DOMAIN + body)) + b"\n" + body
    refused(forged, Refusal.BAD_SIGNATURE)
    assert DOMAIN != COMMAND_DOMAIN


def test_another_gateways_list_is_refused() -> None:
    refused(encode_signed(full(), KEY), Refusal.WRONG_GATEWAY, gateway_id="gw-2")


def test_an_oversize_payload_is_refused_unread() -> None:
    refused(b"x" * (schema.MAX_ACCESS_BYTES + 1), Refusal.OVERSIZE)


def signed_raw(body: dict[str, Any]) -> bytes:
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(KEY.sign(DOMAIN + raw)) + b"\n" + raw


@pytest.mark.parametrize(
    "where",
    ["door", "subject", "right_door", "revocation", "removed"],
)
def test_nul_in_any_string_is_refused_even_when_signed(where: str) -> None:
    body = json.loads(canonical_body(full()))
    if where == "door":
        body["doors"][0]["id"] = "fr\x00nt"
    elif where == "subject":
        body["credentials"][0]["subject"] = "s-\x00"
    elif where == "right_door":
        body["rights"][0]["doors"] = ["front\x00"]
    elif where == "revocation":
        body["revocations"][0]["id"] = "s\x00"
    else:
        body |= {"base_version": 1, "version": 2, "removed": {"rights": ["r\x00"]}}
    refused(signed_raw(body), Refusal.MALFORMED)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("doors", [{"id": f"d{i}"} for i in range(schema.MAX_DOORS + 1)]),
        (
            "revocations",
            [{"kind": "right", "id": f"r{i}"} for i in range(schema.MAX_REVOCATIONS + 1)],
        ),
        ("version", 2**63),
        ("extra", 1),
    ],
)
def test_counts_and_numbers_beyond_the_bounds_are_refused(field: str, value: object) -> None:
    body = json.loads(canonical_body(full())) | {field: value}
    refused(signed_raw(body), Refusal.MALFORMED)


def test_argon2_parameters_that_would_exhaust_the_gateway_are_refused() -> None:
    body = json.loads(canonical_body(full()))
    body["credentials"][1]["pin"]["memory_kib"] = schema.MAX_ARGON2_MEMORY_KIB + 1
    refused(signed_raw(body), Refusal.MALFORMED)


@pytest.mark.parametrize(
    "credential",
    [
        {"kind": "face"},  # no embedding
        {"kind": "face", "embedding": "A" * 1020 + "===="},  # padding: not 768 bytes
        {"kind": "pin", "keypad_id": "12"},  # no hash
        {"kind": "face", "embedding": "A" * 1024, "keypad_id": "12"},
    ],
)
def test_credentials_hold_exactly_their_kinds_secret(credential: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        schema.Credential.model_validate({"id": "c", "subject": "s"} | credential)


def test_two_pins_may_not_share_a_keypad_id() -> None:
    with pytest.raises(ValidationError, match="keypad_id"):
        access_list(credentials=[pin("a", "s1", "7"), pin("b", "s2", "7")])


def test_a_right_ends_after_it_starts_on_distinct_doors() -> None:
    with pytest.raises(ValidationError):
        right("r", "s", days=0)
    with pytest.raises(ValidationError):
        right("r", "s", "front", "front")


def test_a_delta_upserts_and_removes_by_id() -> None:
    held = full()
    delta = AccessList(
        gateway_id=GATEWAY,
        version=2,
        base_version=1,
        issued_at=T0 + timedelta(hours=1),
        doors=[door("lobby")],
        rights=[right("r-1", "s-ann", "front", days=1), right("r-2", "s-bob")],
        removed=Removed(credentials=["c-pin"], revocations=["subject/s-old"]),
    )
    after = apply(held, delta)
    assert after.full
    assert after.version == 2
    assert after.issued_at == delta.issued_at
    assert [d.id for d in after.doors] == ["front", "garage", "lobby"]
    assert [c.id for c in after.credentials] == ["c-face"]
    assert {r.id: r.valid_until - r.valid_from for r in after.rights} == {
        "r-1": timedelta(days=1),
        "r-2": timedelta(days=30),
    }
    assert after.revocations == []


def test_a_delta_on_another_base_or_an_old_version_is_refused() -> None:
    held = full()
    stale = AccessList(gateway_id=GATEWAY, version=5, base_version=3, issued_at=T0)
    with pytest.raises(StaleDeltaError):
        apply(held, stale)
    with pytest.raises(StaleDeltaError):
        apply(None, stale)
    with pytest.raises(ValueError, match="not after"):
        apply(held, access_list(1))
    with pytest.raises(AccessRefusedError) as caught:
        admit(stale, held.version)
    assert caught.value.reason is Refusal.STALE_BASE
    for old in (access_list(1), AccessList(gateway_id=GATEWAY, version=1, issued_at=T0)):
        with pytest.raises(AccessRefusedError) as caught:
            admit(old, 1)
        assert caught.value.reason is Refusal.REPLAYED
    admit(access_list(2), 1)
    admit(AccessList(gateway_id=GATEWAY, version=2, base_version=1, issued_at=T0), 1)


def test_a_delta_that_breaks_the_whole_list_is_refused() -> None:
    held = access_list(1, credentials=[pin("a", "s1", "7")])
    delta = AccessList(
        gateway_id=GATEWAY,
        version=2,
        base_version=1,
        issued_at=T0,
        credentials=[pin("b", "s2", "7")],
    )
    with pytest.raises(ValueError, match="keypad_id"):
        apply(held, delta)


def test_a_full_list_removes_nothing() -> None:
    with pytest.raises(ValidationError):
        access_list(removed=Removed(rights=["r-1"]))


def test_up_state_carries_the_access_version_only_when_there_is_one() -> None:
    from protocols.mqtt import messages as msg  # noqa: PLC0415

    fields = {"gateway_id": GATEWAY, "seq": 1, "ts": T0, "online": True}
    assert "access_version" not in json.loads(msg.encode(msg.State(**fields)))
    with_list = msg.decode(msg.State, msg.encode(msg.State(**fields, access_version=7)))
    assert with_list.access_version == 7


def test_the_embedding_size_is_the_recognizers() -> None:
    from protocols.face.contract import RECOGNIZER  # noqa: PLC0415

    assert RECOGNIZER.dim == schema.EMBEDDING_DIM


def test_a_gateway_sets_face_vectors_aside_in_the_order_of_the_list() -> None:
    sent = access_list(
        1,
        credentials=[face("c-1", "s-1", 1), pin("c-pin", "s-1", "1203"), face("c-2", "s-2", 2)],
        rights=[right("r-1", "s-1")],
    )
    faces = bytearray()
    held = decode_signed(encode_signed(sent, KEY), PUBLIC, gateway_id=GATEWAY, faces=faces)
    ann, bob = sent.credentials[0].embedding_bytes(), sent.credentials[2].embedding_bytes()
    assert bytes(faces) == ann + bob
    assert [c.embedding for c in held.credentials] == [schema.SET_ASIDE, None, schema.SET_ASIDE]
    with pytest.raises(ValueError, match="set aside"):
        held.credentials[0].embedding_bytes()
    assert held.model_copy(update={"credentials": sent.credentials}) == sent


def test_records_share_their_set_of_given_fields_and_a_copy_does_not_touch_it() -> None:
    sent = access_list(1, rights=[right("r-1", "s-ann"), right("r-2", "s-bob")])
    parsed = decode_signed(encode_signed(sent, KEY), PUBLIC, gateway_id=GATEWAY)
    one, other = parsed.rights
    assert one.model_fields_set is other.model_fields_set
    fields = set(one.model_fields_set)
    short = schema.Right(
        id="r-3", subject="s", kind=schema.RightKind.LEASE, doors=["front"],
        valid_from=T0, valid_until=T0 + timedelta(days=1),
    )  # fmt: skip
    assert short.model_fields_set == {"id", "subject", "kind", "doors", "valid_from", "valid_until"}
    changed = one.model_copy(update={"uses": 3})
    assert (changed.uses, one.model_fields_set, other.model_fields_set) == (3, fields, fields)
