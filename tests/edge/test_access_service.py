"""The gateway's access lists: verified, applied atomically, persisted sealed, and every
attack on `down/access` refused with an event; decisions recorded on the outbox."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge.access.clock import GatewayClock
from edge.access.service import AccessService, verify_pin
from edge.access.store import AccessStore, load_or_create_key
from edge.store.outbox import Outbox
from protocols.access.decide import Face, Pin, Reason
from protocols.access.schema import SET_ASIDE, AccessList, Removed, RevocationKind
from protocols.access.signing import DOMAIN, Refusal, canonical_body, encode_signed
from tests.access_lists import (
    GATEWAY,
    KEY,
    OTHER_KEY,
    T0,
    access_list,
    face,
    pin,
    revoke,
    right,
)

NOON = T0 + timedelta(hours=4)


class Clocks:
    """The gateway's clocks, moved by the test: the wall clock follows the monotonic one (as
    NTP keeps it) until the test sets it."""

    def __init__(self) -> None:
        self.wall: datetime | None = None
        self.mono = 10.0
        self.boot = "boot-1"
        self.synced = True

    def read_wall(self) -> datetime:
        return self.wall or NOON + timedelta(seconds=self.mono - 10.0)

    def gateway(self) -> GatewayClock:
        return GatewayClock(
            self.read_wall,
            monotonic=lambda: self.mono,
            boot=lambda: self.boot,
            ntp_synced=lambda: self.synced,
        )


class Gateway:
    def __init__(self, tmp: Path, clocks: Clocks | None = None) -> None:
        self.path = tmp / "gw.db"
        self.clocks = clocks or Clocks()
        self.outbox = Outbox(self.path)
        self.store = AccessStore(self.path, load_or_create_key(tmp / "access.key"))
        self.service = AccessService(
            GATEWAY, KEY.public_key(), self.store, self.outbox, self.clocks.gateway()
        )

    def events(self) -> list[dict[str, Any]]:
        return [row.payload for row in self.outbox.pending()]

    def close(self) -> None:
        self.outbox.close()
        self.store.close()


@pytest.fixture
def gw(tmp_path: Path) -> Any:
    gateway = Gateway(tmp_path)
    yield gateway
    gateway.close()


def first() -> AccessList:
    return access_list(
        1,
        credentials=[face("f-ann", "ann", 1), pin("p-ann", "ann", "1203", "246810")],
        rights=[right("r-ann", "ann", "front")],
    )


def delta(base: int, version: int, **fields: Any) -> AccessList:
    return AccessList(
        gateway_id=GATEWAY, version=version, base_version=base, issued_at=T0, **fields
    )


def test_a_list_is_applied_persisted_and_reported(gw: Gateway, tmp_path: Path) -> None:
    assert gw.service.receive(encode_signed(first(), KEY))
    assert gw.service.version == 1
    assert gw.events()[-1] | {"ts": None} == {
        "type": "access.list_applied",
        "source": "access",
        "ts": None,
        "version": 1,
        "credentials": 2,
        "rights": 1,
    }
    gw.close()
    again = Gateway(tmp_path, gw.clocks)
    try:
        assert again.service.version == 1
        assert again.store.load() == first()
    finally:
        again.close()


def test_embeddings_and_code_secrets_are_sealed_at_rest(gw: Gateway, tmp_path: Path) -> None:
    sent = first()
    gw.service.receive(encode_signed(sent, KEY))
    raw = (tmp_path / "gw.db").read_bytes() + (tmp_path / "gw.db-wal").read_bytes()
    embedding = base64.b64decode(sent.credentials[0].embedding or "")
    secret = base64.b64decode(sent.doors[0].code_secret or "")
    assert embedding[:32] not in raw
    assert (sent.credentials[0].embedding or "")[:64].encode() not in raw
    assert secret not in raw
    assert os.stat(tmp_path / "access.key").st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "gw.db").st_mode & 0o777 == 0o600


def test_a_sealed_row_moved_to_another_credential_does_not_open(
    gw: Gateway, tmp_path: Path
) -> None:
    gw.service.receive(
        encode_signed(
            first().model_copy(update={"credentials": [face("a", "x", 1), face("b", "y", 2)]}), KEY
        )
    )
    db = sqlite3.connect(tmp_path / "gw.db")
    db.execute(
        "UPDATE access_records SET sealed = (SELECT sealed FROM access_records WHERE id = 'a')"
        " WHERE id = 'b'"
    )
    db.commit()
    db.close()
    gw.close()
    again = Gateway(tmp_path, gw.clocks)
    try:
        assert again.service.index is None  # refused as a whole: the cloud resends it
        assert again.store.load() is None
    finally:
        again.close()


def test_a_store_sealed_with_aes_gcm_waits_for_a_whole_list(gw: Gateway, tmp_path: Path) -> None:
    """Stores sealed before libsodium hold a 12-byte nonce and an AES-256-GCM ciphertext, with
    no scheme byte: such a store does not open, and the next whole list replaces it."""
    gw.service.receive(encode_signed(first(), KEY))
    aead = AESGCM(load_or_create_key(tmp_path / "access.key"))
    db = sqlite3.connect(tmp_path / "gw.db")
    sealed = db.execute("SELECT kind, id FROM access_records WHERE sealed IS NOT NULL").fetchall()
    assert sorted(kind for kind, _ in sealed) == ["credential", "door", "door"]
    for kind, id_ in sealed:
        nonce = os.urandom(12)
        old = nonce + aead.encrypt(nonce, b"a secret", f"{kind}/{id_}".encode())
        db.execute(
            "UPDATE access_records SET sealed = ? WHERE kind = ? AND id = ?", (old, kind, id_)
        )
    db.commit()
    db.close()
    gw.close()
    again = Gateway(tmp_path, gw.clocks)
    try:
        assert again.store.load() is None
        assert again.service.index is None
        assert again.service.receive(encode_signed(first(), KEY))
        assert again.store.load() == first()
    finally:
        again.close()


def refused(gw: Gateway, payload: bytes, reason: Refusal) -> None:
    before = gw.service.version
    assert not gw.service.receive(payload)
    assert gw.service.version == before
    event = gw.events()[-1]
    assert (event["type"], event["reason"]) == ("access.list_refused", str(reason))


def signed_raw(body: dict[str, Any]) -> bytes:
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(KEY.sign(DOMAIN + raw)) + b"\n" + raw


def test_attacks_on_down_access_are_refused(gw: Gateway) -> None:
    gw.service.receive(encode_signed(first(), KEY))
    v2 = access_list(2, rights=[right("r-ann", "ann", "front", "garage")])
    refused(gw, encode_signed(v2, OTHER_KEY), Refusal.BAD_SIGNATURE)
    refused(gw, encode_signed(v2, KEY)[:-2] + b"}}", Refusal.BAD_SIGNATURE)
    refused(gw, canonical_body(v2), Refusal.UNSIGNED)
    refused(
        gw, encode_signed(v2.model_copy(update={"gateway_id": "gw-2"}), KEY), Refusal.WRONG_GATEWAY
    )
    refused(gw, encode_signed(first(), KEY), Refusal.REPLAYED)  # the same version again
    refused(gw, encode_signed(delta(5, 6), KEY), Refusal.STALE_BASE)
    refused(gw, b"x" * (16 * 1024 * 1024 + 1), Refusal.OVERSIZE)
    body = json.loads(canonical_body(v2))
    body["rights"][0]["subject"] = "ann\x00"
    refused(gw, signed_raw(body), Refusal.MALFORMED)
    assert gw.service.refused == {
        Refusal.BAD_SIGNATURE: 2,
        Refusal.UNSIGNED: 1,
        Refusal.WRONG_GATEWAY: 1,
        Refusal.REPLAYED: 1,
        Refusal.STALE_BASE: 1,
        Refusal.OVERSIZE: 1,
        Refusal.MALFORMED: 1,
    }
    assert gw.service.receive(encode_signed(v2, KEY))


def test_a_non_finite_embedding_is_refused(gw: Gateway) -> None:
    vector = np.full(192, np.nan, dtype="<f4").tobytes()
    bad = face("f-x", "x").model_copy(update={"embedding": base64.b64encode(vector).decode()})
    refused(gw, encode_signed(access_list(1, credentials=[bad]), KEY), Refusal.MALFORMED)


def test_a_delta_is_applied_on_its_base_and_a_failing_one_changes_nothing(
    gw: Gateway, tmp_path: Path
) -> None:
    gw.service.receive(encode_signed(first(), KEY))
    d2 = delta(
        1,
        2,
        credentials=[face("f-bob", "bob", 2)],
        rights=[right("r-bob", "bob")],
        removed=Removed(credentials=["p-ann"]),
    )
    assert gw.service.receive(encode_signed(d2, KEY))
    clash = delta(2, 3, credentials=[pin("p-1", "bob", "77"), pin("p-2", "ann", "77")])
    refused(gw, encode_signed(clash, KEY), Refusal.MALFORMED)
    gw.close()
    again = Gateway(tmp_path, gw.clocks)
    try:
        assert again.service.version == 2
        held = again.service.index
        assert held is not None
        assert sorted(c.id for c in held.list.credentials) == ["f-ann", "f-bob"]
    finally:
        again.close()


def test_decisions_are_recorded_and_the_guard_state_survives_a_restart(
    gw: Gateway, tmp_path: Path
) -> None:
    visitor = right("r-vic", "vic", uses=1)
    gw.service.receive(
        encode_signed(access_list(1, credentials=[face("f-vic", "vic", 3)], rights=[visitor]), KEY)
    )
    granted = gw.service.decide("front", Face("f-vic"))
    gw.service.record(granted, score=0.9)
    assert granted.granted
    event = gw.events()[-1]
    assert (event["type"], event["subject"], event["score"], event["how"]) == (
        "access.granted",
        "vic",
        0.9,
        "face",
    )
    gw.close()
    again = Gateway(tmp_path, gw.clocks)
    try:
        assert again.service.decide("front", Face("f-vic")).reason is Reason.USED_UP
    finally:
        again.close()


def test_after_a_reboot_without_time_an_expired_right_stays_expired(tmp_path: Path) -> None:
    clocks = Clocks()
    gw = Gateway(tmp_path, clocks)
    short = right("r-ann", "ann", start=T0, days=0.25)  # until T0 + 6 h
    gw.service.receive(
        encode_signed(access_list(1, credentials=[face("f-ann", "ann")], rights=[short]), KEY)
    )
    clocks.mono += 3 * 3600  # NOON + 3 h = T0 + 7 h: expired
    gw.service.tick()
    gw.close()
    clocks.boot, clocks.mono, clocks.synced = "boot-2", 5.0, False
    clocks.wall = datetime(1970, 1, 1, tzinfo=NOON.tzinfo)  # no battery clock
    again = Gateway(tmp_path, clocks)
    try:
        decision = again.service.decide("front", Face("f-ann"))
        assert (decision.reason, decision.at) == (Reason.EXPIRED, NOON + timedelta(hours=3))
    finally:
        again.close()


def test_pins_are_checked_with_argon2id(gw: Gateway) -> None:
    gw.service.receive(encode_signed(first(), KEY))
    assert gw.service.decide("front", Pin("1203", "246810")).granted
    assert gw.service.decide("front", Pin("1203", "246811")).reason is Reason.WRONG_PIN
    stored = first().credentials[1].pin
    assert stored is not None
    assert not verify_pin(stored.model_copy(update={"salt": "AAAA"}), "246810")


def test_the_door_gallery_holds_the_faces_of_subjects_with_a_right_on_it(gw: Gateway) -> None:
    gw.service.receive(
        encode_signed(
            access_list(
                1,
                credentials=[
                    face("f-ann", "ann", 1),
                    face("f-bob", "bob", 2),
                    face("f-cy", "cy", 3),
                ],
                rights=[
                    right("r-ann", "ann", "front"),
                    right("r-bob", "bob", "garage"),
                    right("r-cy", "cy", "front"),
                ],
                revocations=[revoke(RevocationKind.RIGHT, "r-cy")],
            ),
            KEY,
        )
    )
    gallery = gw.service.gallery("front")
    assert len(gallery) == 1
    match = gallery.match(np.frombuffer(base64.b64decode(face("x", "y", 1).embedding or ""), "<f4"))
    assert match.identity is not None
    assert (match.identity.person_id, round(match.score, 4)) == ("f-ann", 1.0)
    assert len(gw.service.gallery("roof")) == 0


def test_the_held_list_keeps_no_face_vector_and_the_gallery_reads_them_sealed(
    gw: Gateway, tmp_path: Path
) -> None:
    sent = first()
    assert gw.service.receive(encode_signed(sent, KEY))
    again = Gateway(tmp_path, gw.clocks)
    try:
        for service in (gw.service, again.service):
            assert service.index is not None
            held = {c.id: c.embedding for c in service.index.list.credentials}
            assert held == {"f-ann": SET_ASIDE, "p-ann": None}
            gallery = service.gallery("front")
            vector = np.frombuffer(sent.credentials[0].embedding_bytes(), "<f4")
            match = gallery.match(vector)
            assert match.identity is not None
            assert (match.identity.person_id, round(match.score, 4)) == ("f-ann", 1.0)
    finally:
        again.close()
