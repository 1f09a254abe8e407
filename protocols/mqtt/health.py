"""`up/health`: how the gateway's box and its buses, meters and doors are doing.

Sent every `link.health_interval_s` (bounded below by MIN_HEALTH_INTERVAL_S), never retained:
the cloud keeps the history and drops samples that come faster than that, so a gateway that
floods cannot fill the table. Every list and number is bounded like the rest of the wire.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field, field_serializer, field_validator

from protocols.mqtt.bounds import Count, Name
from protocols.mqtt.messages import _Envelope, _is_none, _iso, _Model, _utc
from protocols.text import CLEAN

MIN_HEALTH_INTERVAL_S = 10.0
MAX_BUSES = 64
MAX_METERS = 2048
MAX_DOORS = 64
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Megabytes = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]
Celsius = Annotated[float, Field(ge=-80, le=200, allow_inf_nan=False)]


class MeterStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    OFFLINE = "offline"


class MeterHealth(_Model):
    id: Name
    bus: Name
    status: MeterStatus
    failures: Count = 0  # consecutive polls that got nothing
    last_error: Annotated[str, Field(max_length=200, pattern=CLEAN)] = ""


class BusHealth(_Model):
    name: Name
    meters: Count
    offline: Count
    requests: Count  # Modbus requests since the gateway started


class LockState(StrEnum):
    LOCKED = "locked"
    UNLOCKED = "unlocked"
    JAMMED = "jammed"


class DoorHealth(_Model):
    """`lock`, `open` and `battery_percent` as the gateway last heard from the door's lock;
    left out for a lock that reports nothing (a simulator, a lock not heard from yet)."""

    id: Name
    state: Name  # "running", or what the door's service says it is doing
    frames: Count = 0
    lock: Annotated[LockState | None, Field(exclude_if=_is_none)] = None
    open: Annotated[bool | None, Field(exclude_if=_is_none)] = None
    battery_percent: Annotated[int | None, Field(ge=0, le=100, exclude_if=_is_none)] = None


class Health(_Envelope):
    """`seq` is the newest record written (as in `up/state`); `started` when the gateway
    process started; `temperature_c` is None on a board without a sensor."""

    version: Annotated[str, Field(max_length=64, pattern=CLEAN)]
    started: AwareDatetime
    uptime_s: Count  # the machine's
    cpu_percent: Percent
    memory_percent: Percent
    memory_available_mb: Megabytes
    disk_free_mb: Megabytes
    disk_free_percent: Percent
    temperature_c: Celsius | None = None
    pending: Count = 0
    dropped: Count = 0
    buses: Annotated[list[BusHealth], Field(max_length=MAX_BUSES)]
    meters: Annotated[list[MeterHealth], Field(max_length=MAX_METERS)]
    doors: Annotated[list[DoorHealth], Field(max_length=MAX_DOORS)]

    _started_utc = field_validator("started")(_utc)
    _started_iso = field_serializer("started")(_iso)
