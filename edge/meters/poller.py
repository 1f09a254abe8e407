"""One poller per Modbus bus: merged reads, per-meter health, counter quality; each cycle's
values go out as a `PollSnapshot` that a sink (edge/meters/sink.py) encodes and stores.

A serial bus has one transport, so its meters are read one transaction at a time. A TCP bus
has one transport per host; hosts are polled concurrently (at most `max_concurrent` at once) and
meters behind one host in turn. A cycle has a deadline (the poll interval), a meter's failure
ends its own poll early, and an offline meter is only retried on backoff: one dead meter never
stalls the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from edge.config import MeterDevice, ModbusBus
from edge.meters.health import MeterHealth
from edge.meters.profiles import load_profile
from edge.meters.sink import OutboxSink
from edge.meters.snapshot import PointValue, PollSnapshot
from edge.meters.transport import Transport, serial_transport, tcp_transport
from protocols.modbus.errors import MeterConnectionError, MeterError, MeterTimeoutError
from protocols.modbus.plan import (
    ReadRequest,
    one_per_point,
    plan_profile,
    refused_span,
    split_read,
)
from protocols.modbus.profile import Point, Profile
from protocols.modbus.rtu import break_even_gap
from protocols.mqtt.bounds import value_fits
from protocols.mqtt.messages import Quality
from runtime.backoff import Backoff

log = logging.getLogger(__name__)


class Plan(StrEnum):
    MERGED = "merged"
    PER_POINT = "per_point"  # the naive baseline, kept for the benchmark and for odd meters


@dataclass
class Meter:
    device: MeterDevice
    profile: Profile
    reads: tuple[ReadRequest, ...]
    transport: Transport
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
        sink: OutboxSink,
        *,
        now: Callable[[], datetime],
        clock: Callable[[], float] = time.monotonic,
        plan: Plan = Plan.MERGED,
        profiles: Mapping[str, Profile] | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._bus = bus
        self._sink = sink
        self._now = now
        self._clock = clock
        self._transports: dict[str, Transport] = {}
        self._late = False
        self._rand = rand
        known = dict(profiles or {})
        self.meters = [self._meter(d, plan, known) for d in bus.devices]
        self.requests = 0
        self._retimed = asyncio.Event()
        self._stopping = False

    def set_poll_interval(self, seconds: float) -> None:
        """A new interval (remote configuration), taken at once rather than after the current
        wait."""
        if seconds != self._bus.poll_interval_s:
            self._bus = self._bus.model_copy(update={"poll_interval_s": seconds})
            self._retimed.set()

    def stop(self) -> None:
        """End `run` once the cycle under way (if any) is stored: a replaced bus loses no
        reading."""
        self._stopping = True
        self._retimed.set()

    @property
    def name(self) -> str:
        return self._bus.name

    @property
    def bus(self) -> ModbusBus:
        """The settings it polls with (its interval as last set)."""
        return self._bus

    def _meter(self, device: MeterDevice, plan: Plan, profiles: dict[str, Profile]) -> Meter:
        profile = profiles.get(device.profile)
        if profile is None:  # one load per profile, not per device
            profile = profiles[device.profile] = load_profile(device.profile)
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
        return Meter(device, profile, reads, self._transport_for(device), health)

    def _transport_for(self, device: MeterDevice) -> Transport:
        bus = self._bus
        if bus.serial is not None:
            key = bus.serial
            if key not in self._transports:
                self._transports[key] = serial_transport(
                    bus.serial,
                    baud=bus.baud,
                    timeout_s=bus.timeout_s,
                    parity=bus.parity,
                    stopbits=bus.stopbits,
                    bytesize=bus.bytesize,
                )
            return self._transports[key]
        host, port = bus.device_address(device)
        key = f"{host}:{port}"
        if key not in self._transports:
            self._transports[key] = tcp_transport(host, port, timeout_s=bus.timeout_s)
        return self._transports[key]

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()

    async def run(self) -> None:
        """Poll every `poll_interval_s`, sleeping (not spinning) in between."""
        try:
            while not self._stopping:
                started = self._clock()
                await self.poll_once()
                self._retimed.clear()
                while (
                    not self._stopping
                    and (wait := started + self._bus.poll_interval_s - self._clock()) > 0
                ):
                    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self._retimed.wait()
                    if not self._retimed.is_set():
                        break
                    self._retimed.clear()
        finally:
            self.close()

    async def poll_once(self, *, deadline_s: float | None = None) -> int:
        """One cycle stored by the sink; returns how many readings it stored."""
        return await self._sink.store(await self.poll(deadline_s=deadline_s))

    async def poll(self, *, deadline_s: float | None = None) -> PollSnapshot:
        """One cycle over every due meter."""
        values: list[PointValue] = []
        now = self._clock()
        by_transport: dict[str, list[Meter]] = {}
        for meter in self.meters:
            if meter.health.due(now):
                by_transport.setdefault(meter.transport.name, []).append(meter)
        gate = asyncio.Semaphore(self._bus.max_concurrent)
        pending = {m.device.id for group in by_transport.values() for m in group}

        async def poll_group(group: list[Meter]) -> None:
            async with gate:
                for meter in group:
                    await self._poll_meter(meter, values)
                    pending.discard(meter.device.id)

        if deadline_s is None:
            # The next poll is due; but always leave room for one meter's full attempt.
            bus = self._bus
            deadline_s = max(bus.poll_interval_s, bus.timeout_s * (bus.retries + 1))
        deadline = deadline_s
        try:
            async with asyncio.timeout(deadline), asyncio.TaskGroup() as tg:
                for name, group in by_transport.items():
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
        return PollSnapshot(tuple(values), frozenset(pending))

    async def _poll_meter(self, meter: Meter, values: list[PointValue]) -> None:
        """Read one meter, adding each read's values to `values` as soon as it is decoded,
        so a cycle cut short by its deadline still keeps what was read."""
        poll = _MeterPoll()
        plan: list[ReadRequest] = []
        for request in meter.reads:
            if poll.gave_up:
                plan.append(request)
            else:
                plan.extend(await self._read_into(meter, request, values, poll))
        if len(plan) != len(meter.reads):
            log.warning(
                "[%s] refused merged reads; now %d reads per poll instead of %d: %s",
                meter.health.label,
                len(plan),
                len(meter.reads),
                " ".join(f"{r.function}:{r.address:#06x}+{r.count}" for r in plan),
            )
            meter.reads = tuple(plan)
        meter.health.record(
            self._clock(), ok_reads=poll.ok, errors=poll.errors, retried=poll.retried
        )

    async def _read_into(
        self, meter: Meter, request: ReadRequest, values: list[PointValue], poll: _MeterPoll
    ) -> list[ReadRequest]:
        """Read `request`; returns the reads that take its place in the meter's plan.

        A merged read the meter refuses (illegal data address/value: unmapped registers inside,
        or more than it serves at once) is split and the parts read at once. The split is kept
        only if some part was read: a meter refusing every part has a profile problem, not a
        span problem, and keeps its merged read.
        """
        got, tries = await self._read(meter, request)
        poll.retried += tries
        if not isinstance(got, MeterError):
            poll.ok += 1
            values.extend(self._values(meter, request, got))
            return [request]
        if refused_span(got, request):
            before = poll.ok
            parts: list[ReadRequest] = []
            for part in split_read(request):
                if poll.gave_up:
                    parts.append(part)
                else:
                    parts.extend(await self._read_into(meter, part, values, poll))
            return parts if poll.ok > before else [request]
        poll.errors.append(got)
        if poll.ok == 0 and isinstance(got, MeterTimeoutError | MeterConnectionError):
            poll.gave_up = True  # nobody there: do not spend a timeout on each remaining read
        return [request]

    async def _read(self, meter: Meter, request: ReadRequest) -> tuple[list[int] | MeterError, int]:
        """One read with its retries: (the words or the last error, retries used)."""
        attempt = 0
        while True:
            self.requests += 1
            try:
                return await meter.transport.read(request), attempt
            except MeterError as exc:
                if attempt == self._bus.retries or refused_span(exc, request):
                    return exc, attempt
            attempt += 1

    def _values(self, meter: Meter, request: ReadRequest, words: list[int]) -> list[PointValue]:
        ts = self._now()
        meter_id = meter.device.id
        out: list[PointValue] = []
        for point, decoded in request.values(words):
            if isinstance(decoded, str):
                out.append(PointValue(meter_id, point, ts, decoded, Quality.GOOD))
                continue
            value, quality = decoded, Quality.GOOD
            if not value_fits(value):
                quality, value = Quality.BAD, 0.0
            elif point.digits is not None:
                quality, why = counter_quality(point, meter.counters.get(point.name), value)
                if why:
                    log.log(
                        logging.WARNING if quality is Quality.UNCERTAIN else logging.INFO,
                        "[%s] %s: %s",
                        meter.health.label,
                        point.name,
                        why,
                    )
                meter.counters[point.name] = value
            out.append(PointValue(meter_id, point, ts, value, quality))
        return out


@dataclass
class _MeterPoll:
    """What one meter's poll has gathered so far."""

    ok: int = 0
    retried: int = 0
    errors: list[MeterError] = field(default_factory=list)
    gave_up: bool = False
