"""Downlink models: a gateway's settings, versioned (access lists: test_access_lists.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.mqtt import messages as msg
from protocols.mqtt.downlink import Config, UplinkLimits
from tests.protocols.wire import texts

TS = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CST = timezone(timedelta(hours=8))
ENVELOPE = {"gateway_id": "gw-1", "seq": 7, "ts": TS}


# ---- round trips ----------------------------------------------------------------------------

names = texts(min_size=1, max_size=64)
versions = st.integers(min_value=1, max_value=2**63 - 1)


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


def wire(model: Config, **changes: Any) -> bytes:
    return json.dumps({**json.loads(msg.encode(model)), **changes}).encode()


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
