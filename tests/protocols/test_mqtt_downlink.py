"""Downlink models: a gateway's settings and access list, versioned, and how a list updates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.mqtt import messages as msg
from protocols.mqtt.downlink import (
    AccessEntry,
    AccessList,
    Config,
    Credential,
    CredentialKind,
    UplinkLimits,
    apply,
)
from tests.protocols.wire import texts

TS = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CST = timezone(timedelta(hours=8))
ENVELOPE = {"gateway_id": "gw-1", "seq": 7, "ts": TS}


def entry(i: int, *, doors: tuple[str, ...] = ("front",), days: int = 30) -> AccessEntry:
    return AccessEntry(
        id=f"e-{i}",
        subject=f"tenant-{i}",
        credential=Credential(kind=CredentialKind.CARD, ref=f"04A1{i:06X}"),
        doors=list(doors),
        valid_from=TS,
        valid_until=TS + timedelta(days=days),
    )


def full(version: int, *entries: AccessEntry) -> AccessList:
    return AccessList(**ENVELOPE, version=version, entries=list(entries))


def delta(
    base: int, version: int, *entries: AccessEntry, removed: tuple[str, ...] = ()
) -> AccessList:
    return AccessList(
        **ENVELOPE, version=version, base_version=base, entries=list(entries), removed=list(removed)
    )


# ---- round trips ----------------------------------------------------------------------------

names = texts(min_size=1, max_size=64)
aware = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis adds the zone
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, CST]),
)
versions = st.integers(min_value=1, max_value=2**63 - 1)


@st.composite
def entries(draw: st.DrawFn) -> AccessEntry:
    start = draw(aware)
    return AccessEntry(
        id=draw(names),
        subject=draw(names),
        credential=Credential(
            kind=draw(st.sampled_from(list(CredentialKind))),
            ref=draw(texts(min_size=1, max_size=128)),
        ),
        doors=draw(st.lists(names, min_size=1, max_size=32, unique=True)),
        valid_from=start,
        valid_until=start + draw(st.timedeltas(timedelta(seconds=1), timedelta(days=3650))),
    )


@given(
    versions,
    st.lists(entries(), max_size=20, unique_by=lambda e: e.id),
    st.lists(names, max_size=20, unique=True),
    st.booleans(),
)
def test_access_lists_round_trip(
    version: int, listed: list[AccessEntry], removed: list[str], is_delta: bool
) -> None:
    if is_delta and version > 1:
        removed = [r for r in removed if r not in {e.id for e in listed}]
        sent = delta(version - 1, version, *listed, removed=tuple(removed))
    else:
        sent = full(version, *listed)
    got = msg.decode(AccessList, msg.encode(sent))
    assert got == sent
    assert all(e.valid_until.utcoffset() == timedelta(0) for e in got.entries)


@given(
    versions,
    st.dictionaries(names, st.floats(min_value=0.001, max_value=86_400), max_size=64),
    st.none() | st.floats(min_value=0.001, max_value=3600),
    st.builds(
        UplinkLimits,
        batch_records=st.none() | st.integers(1, 5000),
        batch_kb=st.none() | st.integers(4, 255),
        window_records=st.none() | st.integers(1, 1_000_000),
        ack_timeout_s=st.none() | st.floats(min_value=0.001, max_value=3600),
    ),
)
def test_configs_round_trip(
    version: int, polls: dict[str, float], state_s: float | None, link: UplinkLimits
) -> None:
    sent = Config(
        **ENVELOPE, version=version, poll_interval_s=polls, state_interval_s=state_s, link=link
    )
    assert msg.decode(Config, msg.encode(sent)) == sent


def test_a_config_names_only_what_it_changes() -> None:
    raw = msg.encode(Config(**ENVELOPE, version=3, poll_interval_s={"meters-tcp": 15.0}))
    got = msg.decode(Config, raw)
    assert (got.state_interval_s, got.link.batch_records) == (None, None)
    assert json.loads(raw)["schema"] == 1


# ---- refusals -------------------------------------------------------------------------------


def wire(model: AccessList | Config, **changes: Any) -> bytes:
    return json.dumps({**json.loads(msg.encode(model)), **changes}).encode()


def entry_wire(**changes: Any) -> dict[str, Any]:
    return {**json.loads(entry(1).model_dump_json()), **changes}


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"valid_until": "2026-04-01T08:00:00"}, "timezone"),  # naive
        ({"valid_until": TS.isoformat()}, "after valid_from"),  # empty window
        ({"valid_until": None}, "valid_until"),  # every entry ends
        ({"doors": []}, "doors"),
        ({"doors": ["front", "front"]}, "twice"),
        ({"credential": {"kind": "password", "ref": "x"}}, "kind"),
        ({"credential": {"kind": "pin", "ref": "x" * 129}}, "ref"),
        ({"pin": "1234"}, "pin"),  # no unknown fields
    ],
)
def test_bad_entries_are_refused(changes: dict[str, Any], why: str) -> None:
    with pytest.raises(msg.MessageError, match=why) as caught:
        msg.decode(AccessList, wire(full(1), entries=[entry_wire(**changes)]))
    assert caught.value.reason == "invalid"


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"version": 0}, "version"),
        ({"base_version": 5}, "before version"),  # a delta from the future
        ({"removed": ["e-1"]}, "both removed and listed"),
        ({"removed": ["e-9", "e-9"]}, "removed twice"),
        ({"entries": [entry_wire(), entry_wire()]}, "listed twice"),
        ({"ts": "2026-03-01T08:00:00"}, "ts"),
    ],
)
def test_bad_deltas_are_refused(changes: dict[str, Any], why: str) -> None:
    with pytest.raises(msg.MessageError, match=why):
        msg.decode(AccessList, wire(delta(1, 2, entry(1)), **changes))


def test_a_full_list_removes_nothing() -> None:
    with pytest.raises(msg.MessageError, match="replaces"):
        msg.decode(AccessList, wire(full(2), removed=["e-1"]))


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"poll_interval_s": {"bus": 0}}, "poll_interval_s"),
        ({"poll_interval_s": {"": 5}}, "poll_interval_s"),
        ({"link": {"batch_kb": 256}}, "batch_kb"),
        ({"link": {"retries": 3}}, "retries"),
        ({"state_interval_s": -1}, "state_interval_s"),
        ({"schema": 2}, "schema"),
    ],
)
def test_bad_configs_are_refused(changes: dict[str, Any], why: str) -> None:
    with pytest.raises(msg.MessageError, match=why):
        msg.decode(Config, wire(Config(**ENVELOPE, version=1), **changes))


def test_oversized_lists_are_refused_both_ways() -> None:
    too_many = [entry(i) for i in range(1001)]
    with pytest.raises(ValueError, match="1000"):
        full(1, *too_many)
    # within the count, a list whose bytes exceed a message is refused when encoded
    bulky = [
        entry(i).model_copy(update={"doors": [f"door-{d:02d}-{'x' * 50}" for d in range(8)]})
        for i in range(1000)
    ]
    with pytest.raises(msg.MessageError) as caught:
        msg.encode(full(1, *bulky))
    assert caught.value.reason == "oversize"
    with pytest.raises(msg.MessageError) as caught:
        msg.decode(AccessList, b" " * (msg.MAX_PAYLOAD_BYTES + 1))
    assert caught.value.reason == "oversize"


# ---- applying lists, and deciding from them offline -------------------------------------------


def test_a_full_list_replaces_and_a_delta_edits_by_id() -> None:
    held = apply(None, full(1, entry(1), entry(2)))
    held = apply(held, delta(1, 2, entry(2, doors=("front", "garage")), entry(3), removed=("e-1",)))
    assert held.full
    assert held.version == 2
    assert sorted(e.id for e in held.entries) == ["e-2", "e-3"]
    assert held.allows("garage", CredentialKind.CARD, entry(2).credential.ref, TS)
    assert apply(held, full(3, entry(9))).entries == [entry(9)]


def test_old_and_repeated_updates_change_nothing() -> None:
    held = apply(None, full(5, entry(1)))
    assert apply(held, full(5)) is held  # a retained copy delivered again
    assert apply(held, full(4)) is held  # a late one
    assert apply(held, delta(3, 4, removed=("e-1",))) is held


@pytest.mark.parametrize("held", [None, full(2, entry(1))])
def test_a_delta_on_another_version_asks_for_the_whole_list(held: AccessList | None) -> None:
    with pytest.raises(msg.MessageError) as caught:
        apply(held, delta(3, 4, entry(2)))
    assert caught.value.reason == "stale"


def test_an_ended_lease_is_refused_by_its_own_expiry() -> None:
    """No revocation needed: a gateway offline since the list came refuses after valid_until."""
    held = apply(None, full(1, entry(1, days=30)))
    card = entry(1).credential.ref
    local_noon = datetime(2026, 3, 15, 12, 0, tzinfo=CST)
    assert held.allows("front", CredentialKind.CARD, card, local_noon)
    assert not held.allows("front", CredentialKind.CARD, card, TS - timedelta(seconds=1))
    assert not held.allows("front", CredentialKind.CARD, card, TS + timedelta(days=30))
    assert not held.allows("back", CredentialKind.CARD, card, local_noon)
    assert not held.allows("front", CredentialKind.PIN, card, local_noon)
