"""Topic names: `anju/v1/{gateway_id}/{direction}/{kind}`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from protocols.errors import AnjuError

PREFIX = "anju/v1"
SHARE_GROUP = "anju"
GATEWAY_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_GATEWAY_ID = re.compile(GATEWAY_ID)


class TopicError(AnjuError):
    """A topic or gateway id does not follow the contract."""


class Kind(StrEnum):
    TELEMETRY = "up/telemetry"
    EVENTS = "up/events"
    STATE = "up/state"
    HEALTH = "up/health"  # gateway → cloud: the box, buses, meters, doors (not retained)
    UP_ACK = "up/ack"  # gateway → cloud: a command's result
    DOWN_ACK = "down/ack"  # cloud → gateway: records stored up to a seq
    CMD = "down/cmd"
    CONFIG = "down/config"
    ACCESS = "down/access"


def check_gateway_id(gateway_id: str) -> str:
    if not _GATEWAY_ID.fullmatch(gateway_id):
        raise TopicError(
            f"gateway id {gateway_id!r} must be 1-64 characters of letters, digits, '_', '.', '-'"
        )
    return gateway_id


def topic(gateway_id: str, kind: Kind) -> str:
    return f"{PREFIX}/{check_gateway_id(gateway_id)}/{kind.value}"


def subscription(kind: Kind, *, share_group: str | None = None) -> str:
    """Wildcard over all gateways; with a share group the broker splits messages among the
    group's subscribers (MQTT 5 shared subscription; Mosquitto honours it for 3.1.1 too)."""
    base = f"{PREFIX}/+/{kind.value}"
    if share_group is None:
        return base
    if not _GATEWAY_ID.fullmatch(share_group):
        raise TopicError(f"share group {share_group!r} must be letters, digits, '_', '.', '-'")
    return f"$share/{share_group}/{base}"


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    gateway_id: str
    kind: Kind


def parse(name: str) -> ParsedTopic:
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != PREFIX:
        raise TopicError(f"topic {name!r} is not under {PREFIX}/<gateway>/<up|down>/<kind>")
    try:
        kind = Kind("/".join(parts[3:]))
    except ValueError:
        raise TopicError(f"topic {name!r} has unknown kind {'/'.join(parts[3:])!r}") from None
    return ParsedTopic(check_gateway_id(parts[2]), kind)
