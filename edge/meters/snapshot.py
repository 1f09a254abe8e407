"""What one poll cycle of a bus produced: typed values, before any encoding or storage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from protocols.modbus.profile import Point
from protocols.mqtt.messages import Quality


class PointValue(NamedTuple):
    """One decoded value of one meter point, with the quality the poller judged it at.

    A tuple rather than a dataclass: a poll of 200 meters makes thousands of them.
    """

    meter: str
    point: Point
    ts: datetime  # the gateway's clock when the read that carried it was decoded
    value: float | str
    quality: Quality


@dataclass(frozen=True, slots=True)
class PollSnapshot:
    values: tuple[PointValue, ...]
    not_polled: frozenset[str] = frozenset()  # meters the cycle's deadline cut off
