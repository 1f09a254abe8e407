"""One poller per Modbus bus: merged reads, per-meter health, readings committed to the outbox.

A serial bus has one link, so its meters are read one transaction at a time. A TCP bus has one
link per host; hosts are polled concurrently (at most `max_concurrent` at once) and meters behind
one host in turn. A cycle has a deadline (the poll interval), a meter's failure ends its own poll
early, and an offline meter is only retried on backoff: one dead meter never stalls the others.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from edge.backoff import Backoff
from edge.config import MeterDevice, ModbusBus
from edge.link.outbox import Outbox
from edge.meters.health import MeterHealth
from edge.meters.link import Link, serial_link, tcp_link
from edge.meters.profiles import load_profile
from protocols.modbus.errors import MeterConnectionError, MeterError, MeterTimeoutError
from protocols.modbus.plan import ReadRequest, one_per_point, plan_profile
from protocols.modbus.profile import Point, Profile
from protocols.modbus.rtu import break_even_gap

log = logging.getLogger(__name__)

OUTBOX_KIND = "reading"


class Quality(StrEnum):
    """Same words as the wire's Reading.quality."""

    GOOD = "good"
    UNCERTAIN = "uncertain"  # e.g. a counter ran backwards without wrapping (swap, glitch)
    BAD = "bad"  # the meter sent NaN/inf; the value field is 0 and means nothing


class Plan(StrEnum):
    MERGED = "merged"
    PER_POINT = "per_point"  # the naive baseline, kept for the benchmark and for odd meters


@dataclass
class Meter:
    device: MeterDevice
    profile: Profile
    reads: tuple[ReadRequest, ...]
    link: Link
    health: MeterHealth
    counters: dict[str, float] = field(default_factory=dict)


def counter_quality(point: Point, previous: float | None, value: float) -> tuple[Quality, str]:
    """Judge a total against the last one: a wrap at 10**digits is normal, a drop is not."""
    if previous is None or value >= previous or point.digits is None:
        return Quality.GOOD, ""
    modulus = 10.0**point.digits
    if previous - value > modulus / 2:
        return Quality.GOOD, f"counter wrapped {previous:g} -> {value:g}"
    return Quality.UNCERTAIN, f"counter ran backwards {previous:g} -> {value:g}"


class BusPoller:
    def __init__(
        self,
        bus: ModbusBus,
        outbox: Outbox,
        *,
        now: Callable[[], datetime],
        clock: Callable[[], float] = time.monotonic,
        on_stored: Callable[[], None] = lambda: None,
        plan: Plan = Plan.MERGED,
        profiles: Mapping[str, Profile] | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._bus = bus
        self._outbox = outbox
        self._now = now
        self._clock = clock
        self._on_stored = on_stored
        self._links: dict[str, Link] = {}
        self._late = False
        self._rand = rand
        self.meters = [self._meter(d, plan, profiles or {}) for d in bus.devices]
        self.requests = 0

    def _meter(self, device: MeterDevice, plan: Plan, profiles: Mapping[str, Profile]) -> Meter:
        profile = profiles.get(device.profile) or load_profile(device.profile)
        if plan is Plan.MERGED:
            max_gap = device.max_gap
            if self._bus.serial is not None:
                # On a slow line a long gap costs more than another request: cap it there.
                gap = break_even_gap(self._bus.baud)
                max_gap = gap if max_gap is None else min(max_gap, gap)
            reads = plan_profile(
                device.unit_id, profile, max_registers=device.max_registers, max_gap=max_gap
            )
        else:
            reads = one_per_point(device.unit_id, profile.points)
        label = f"{self._bus.name}/{device.id}"
        # An offline meter waits about a poll interval, doubling per failure up to the cap.
        backoff = Backoff(
            base=self._bus.poll_interval_s, cap=self._bus.backoff_cap_s, rand=self._rand
        )
        health = MeterHealth(label, offline_after=self._bus.offline_after, backoff=backoff)
        return Meter(device, profile, reads, self._link_for(device), health)

    def _link_for(self, device: MeterDevice) -> Link:
        bus = self._bus
        if bus.serial is not None:
            key = bus.serial
            if key not in self._links:
                self._links[key] = serial_link(
                    bus.serial,
                    baud=bus.baud,
                    timeout_s=bus.timeout_s,
                    parity=bus.parity,
                    stopbits=bus.stopbits,
                    bytesize=bus.bytesize,
                )
            return self._links[key]
        host, port = bus.device_address(device)
        key = f"{host}:{port}"
        if key not in self._links:
            self._links[key] = tcp_link(host, port, timeout_s=bus.timeout_s)
        return self._links[key]

    def close(self) -> None:
        for link in self._links.values():
            link.close()

    async def run(self) -> None:
        """Poll every `poll_interval_s`, sleeping (not spinning) in between."""
        try:
            while True:
                started = self._clock()
                await self.poll_once()
                await asyncio.sleep(max(0.0, started + self._bus.poll_interval_s - self._clock()))
        finally:
            self.close()

    async def poll_once(self, *, deadline_s: float | None = None) -> int:
        """One cycle over every due meter; returns how many readings went into the outbox."""
        records: list[dict[str, Any]] = []
        now = self._clock()
        by_link: dict[str, list[Meter]] = {}
        for meter in self.meters:
            if meter.health.due(now):
                by_link.setdefault(meter.link.name, []).append(meter)
        gate = asyncio.Semaphore(self._bus.max_concurrent)
        pending = {m.device.id for group in by_link.values() for m in group}

        async def poll_group(group: list[Meter]) -> None:
            async with gate:
                for meter in group:
                    await self._poll_meter(meter, records)
                    pending.discard(meter.device.id)

        if deadline_s is None:
            # The next poll is due; but always leave room for one meter's full attempt.
            bus = self._bus
            deadline_s = max(bus.poll_interval_s, bus.timeout_s * (bus.retries + 1))
        deadline = deadline_s
        try:
            async with asyncio.timeout(deadline), asyncio.TaskGroup() as tg:
                for name, group in by_link.items():
                    tg.create_task(poll_group(group), name=f"poll-{self._bus.name}-{name}")
        except TimeoutError:
            # A cancel from outside that lands as the deadline fires must still stop us.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError from None
        if pending and not self._late:
            log.warning(
                "[%s] cycle deadline %.1f s passed; not polled: %s",
                self._bus.name,
                deadline,
                ", ".join(sorted(pending)),
            )
        self._late = bool(pending)
        if records:
            await asyncio.to_thread(self._outbox.append, OUTBOX_KIND, records)
            self._on_stored()
        return len(records)

    async def _poll_meter(self, meter: Meter, records: list[dict[str, Any]]) -> None:
        """Read one meter, adding each read's readings to `records` as soon as it is decoded,
        so a cycle cut short by its deadline still keeps what was read."""
        errors: list[MeterError] = []
        ok = retried = 0
        for request in meter.reads:
            words: list[int] | None = None
            for attempt in range(self._bus.retries + 1):
                self.requests += 1
                try:
                    words = await meter.link.read(request)
                    break
                except (MeterTimeoutError, MeterConnectionError) as exc:
                    error: MeterError = exc
                except MeterError as exc:
                    error = exc
                if attempt < self._bus.retries:
                    retried += 1
                else:
                    errors.append(error)
            if words is None:
                if ok == 0 and isinstance(errors[-1], MeterTimeoutError | MeterConnectionError):
                    break  # nobody there: do not spend a timeout on each remaining read
                continue
            ok += 1
            records.extend(self._records(meter, request, words))
        meter.health.record(self._clock(), ok_reads=ok, errors=errors, retried=retried)

    def _records(
        self, meter: Meter, request: ReadRequest, words: list[int]
    ) -> list[dict[str, Any]]:
        ts = self._now().isoformat()
        out: list[dict[str, Any]] = []
        for point, decoded in request.values(words):
            if isinstance(decoded, str):
                continue  # text (serial numbers, names) is for `anju edge read`, not telemetry
            name, value, quality = point.name, decoded, Quality.GOOD
            if not math.isfinite(value):
                quality, value = Quality.BAD, 0.0
            elif point.digits is not None:
                quality, why = counter_quality(point, meter.counters.get(name), value)
                if why:
                    log.log(
                        logging.WARNING if quality is Quality.UNCERTAIN else logging.INFO,
                        "[%s] %s: %s",
                        meter.health.label,
                        name,
                        why,
                    )
                meter.counters[name] = value
            out.append(
                {
                    "meter": meter.device.id,
                    "point": name,
                    "value": value,
                    "unit": point.unit,
                    "ts": ts,
                    "quality": quality.value,
                }
            )
        return out
