"""Who may touch which topics: the broker ACL of the contract, as data both brokers are given.

A gateway reads and writes only under its own `anju/v1/{id}/`: it publishes `up/…` and
subscribes to `down/…`. A cloud service (ingest, later the command sender) reads every gateway's
`up/…` (also through MQTT 5 shared subscriptions, `$share/{group}/…`) and writes `down/…`.
The embedded broker checks these rules in `anju.broker_auth`; Mosquitto gets them as an
acl_file (`acl_file_section`).

A client id belongs to a login too: the broker keeps a session (subscriptions, queued
commands) per client id and hands it to whoever connects with that id next. A login's ids are
its username, or its username, `:` and a name of the client's choosing (several processes of
one cloud service). `:` is outside the username alphabet, so no login's ids are another's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from protocols.mqtt.topics import PREFIX, check_gateway_id

SHARE_PREFIX = "$share/"
CLIENT_ID_SEPARATOR = ":"


class Access(Enum):
    READ = "read"  # subscribe, and receive what matches
    WRITE = "write"  # publish


@dataclass(frozen=True, slots=True)
class Grant:
    access: Access
    topic_filter: str


def gateway_grants(gateway_id: str) -> tuple[Grant, ...]:
    base = f"{PREFIX}/{check_gateway_id(gateway_id)}"
    return (Grant(Access.WRITE, f"{base}/up/#"), Grant(Access.READ, f"{base}/down/#"))


def service_grants() -> tuple[Grant, ...]:
    return (
        Grant(Access.READ, f"{PREFIX}/+/up/#"),
        Grant(Access.READ, f"{SHARE_PREFIX}+/{PREFIX}/+/up/#"),
        Grant(Access.WRITE, f"{PREFIX}/+/down/#"),
    )


def client_id(username: str | None, instance: str) -> str:
    """The id of one client of `username` (`instance` alone for an anonymous broker)."""
    return f"{username}{CLIENT_ID_SEPARATOR}{instance}" if username else instance


def owns_client_id(username: str, client_id: str) -> bool:
    return client_id == username or client_id.startswith(username + CLIENT_ID_SEPARATOR)


def covers(allowed: str, requested: str) -> bool:
    """Whether every topic `requested` (a name or a filter) matches is matched by `allowed`.

    `+` in `allowed` takes any one level, including a requested `+`; `#` the rest. A requested
    wildcard is covered only by a wildcard at least as wide.
    """
    want = requested.split("/")
    have = allowed.split("/")
    for i, level in enumerate(have):
        if level == "#":
            return True
        if i >= len(want):
            return False
        if want[i] == "#" or (level != "+" and level != want[i]):
            return False
    return len(want) == len(have)


def permits(grants: tuple[Grant, ...], access: Access, topic: str) -> bool:
    """A subscription's filter (READ), a delivered topic (READ) or a published topic (WRITE)."""
    return any(g.access is access and covers(g.topic_filter, topic) for g in grants)


def acl_file_section(username: str, grants: tuple[Grant, ...]) -> str:
    """One user's lines of a Mosquitto acl_file."""
    lines = [f"user {username}"]
    lines += [f"topic {g.access.value} {g.topic_filter}" for g in grants]
    return "\n".join(lines) + "\n"
