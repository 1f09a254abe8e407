"""The broker ACL as data: which filters cover which topics, and what each account may touch."""

from __future__ import annotations

import pytest

from protocols.mqtt.acl import (
    Access,
    acl_file_section,
    client_id,
    covers,
    gateway_grants,
    owns_client_id,
    permits,
    service_grants,
)


@pytest.mark.parametrize(
    ("allowed", "requested", "expected"),
    [
        ("anju/v1/a/up/#", "anju/v1/a/up/telemetry", True),
        ("anju/v1/a/up/#", "anju/v1/a/up", True),  # `#` also matches its parent level
        ("anju/v1/a/up/#", "anju/v1/a/up/#", True),
        ("anju/v1/a/up/#", "anju/v1/a/up/+", True),
        ("anju/v1/a/up/#", "anju/v1/b/up/telemetry", False),
        ("anju/v1/a/up/#", "anju/v1/+/up/telemetry", False),  # a wider filter than allowed
        ("anju/v1/a/up/#", "anju/v1/#", False),
        ("anju/v1/a/up/#", "anju/#", False),
        ("anju/v1/a/up/#", "#", False),
        ("anju/v1/a/up/#", "anju/v1/a/down/ack", False),
        ("anju/v1/a/up/#", "anju/v1/ab/up/telemetry", False),
        ("anju/v1/+/up/#", "anju/v1/x/up/state", True),
        ("anju/v1/+/up/#", "anju/v1/+/up/telemetry", True),
        ("anju/v1/+/up/#", "anju/v1/#", False),
        ("anju/v1/+/up/#", "anju/v1/x/down/ack", False),
        ("anju/v1/+/up/#", "anju/v1/x", False),
        ("$share/+/anju/v1/+/up/#", "$share/g1/anju/v1/+/up/telemetry", True),
        ("$share/+/anju/v1/+/up/#", "$share/g1/anju/v1/+/down/ack", False),
        ("a/b", "a/b", True),
        ("a/b", "a/b/c", False),
        ("a/b", "a", False),
        ("a/+", "a/#", False),
    ],
)
def test_covers(allowed: str, requested: str, expected: bool) -> None:
    assert covers(allowed, requested) is expected


def test_a_gateway_writes_its_uplink_and_reads_its_downlink_only() -> None:
    grants = gateway_grants("gw-a")
    assert permits(grants, Access.WRITE, "anju/v1/gw-a/up/telemetry")
    assert permits(grants, Access.WRITE, "anju/v1/gw-a/up/state")
    assert permits(grants, Access.READ, "anju/v1/gw-a/down/ack")
    assert not permits(grants, Access.READ, "anju/v1/gw-a/up/telemetry")
    assert not permits(grants, Access.WRITE, "anju/v1/gw-a/down/ack")
    assert not permits(grants, Access.WRITE, "anju/v1/gw-b/up/telemetry")
    assert not permits(grants, Access.READ, "anju/v1/gw-b/down/ack")
    assert not permits(grants, Access.READ, "anju/v1/+/down/ack")


def test_a_service_reads_every_uplink_and_writes_downlink() -> None:
    grants = service_grants()
    assert permits(grants, Access.READ, "anju/v1/+/up/telemetry")
    assert permits(grants, Access.READ, "$share/anju/anju/v1/+/up/telemetry")
    assert permits(grants, Access.READ, "anju/v1/gw-a/up/state")
    assert permits(grants, Access.WRITE, "anju/v1/gw-a/down/ack")
    assert not permits(grants, Access.WRITE, "anju/v1/gw-a/up/telemetry")
    assert not permits(grants, Access.READ, "anju/v1/gw-a/down/cmd")
    assert not permits(grants, Access.READ, "#")


def test_acl_file_section_names_the_user_and_each_grant() -> None:
    assert acl_file_section("gw-a", gateway_grants("gw-a")) == (
        "user gw-a\ntopic write anju/v1/gw-a/up/#\ntopic read anju/v1/gw-a/down/#\n"
    )


@pytest.mark.parametrize(
    ("username", "requested", "expected"),
    [
        ("gw-a", "gw-a", True),
        ("anju-cloud", "anju-cloud:ingest-1a2b", True),
        ("gw-a", "gw-a:", True),  # its own, if an odd one
        ("gw-a", "gw-b", False),
        ("gw-a", "gw-ab", False),  # another gateway's id that starts with this one's
        ("gw-a", "gw-a-2", False),
        ("gw-a", "gw", False),
        ("gw-a", "", False),
        ("gw-a", "anju-gw-gw-a", False),
        ("anju", "anju-cloud:x", False),
    ],
)
def test_a_login_owns_only_its_client_ids(username: str, requested: str, expected: bool) -> None:
    assert owns_client_id(username, requested) is expected


def test_a_client_id_made_for_a_login_is_its_own() -> None:
    assert owns_client_id("anju-cloud", client_id("anju-cloud", "ingest-1a2b"))
    assert client_id(None, "ingest-1a2b") == "ingest-1a2b"  # an anonymous broker's
