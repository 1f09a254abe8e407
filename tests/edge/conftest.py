"""Metering fixtures: simulated meters on a real pymodbus server, over TCP or a pty serial line."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from anju.sim.meters import FaultInjector, SimMeter, make_meters, serial_server, tcp_server
from anju.sim.serial import VirtualSerialLine
from edge.config import ModbusBus
from edge.meters.profiles import load_profile
from edge.store.outbox import Outbox
from protocols.modbus.profile import Profile
from tests.conftest import free_port

T0 = 1_750_000_000.0


class SimClock:
    """The simulated meters' wall clock, moved by the test."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class PollClock:
    """The poller's monotonic clock, moved by the test (backoff and deadlines read it)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class SimBus:
    meters: list[SimMeter]
    injector: FaultInjector
    address: str  # "127.0.0.1:port" or the client end of the serial line
    clock: SimClock
    line: VirtualSerialLine | None = None

    def meter(self, unit_id: int) -> SimMeter:
        return next(m for m in self.meters if m.unit_id == unit_id)


def make_bus(transport: dict[str, Any], units: list[int], profile: str, **kw: Any) -> ModbusBus:
    """A bus of meters m<unit> with a short timeout and no retries unless `kw` says otherwise."""
    return ModbusBus.model_validate(
        {
            "name": "bus",
            **transport,
            "timeout_s": 0.3,
            "retries": 0,
            "devices": [{"id": f"m{u}", "unit_id": u, "profile": profile} for u in units],
            **kw,
        }
    )


def gateway_now() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def outbox(tmp_path: Path) -> Any:
    box = Outbox(tmp_path / "gw.db")
    yield box
    box.close()


SimFactory = Callable[..., Any]


async def stop(servers: list[tuple[Any, list[SimMeter]]]) -> None:
    for server, meters in servers:
        for meter in meters:
            meter.release()
        await asyncio.sleep(0.01)  # let released handlers reply before the sockets close
        await server.shutdown()


@pytest.fixture
async def tcp_meters() -> AsyncIterator[SimFactory]:
    """Start N simulated meters of a profile on a free TCP port; all stopped at teardown."""
    servers: list[Any] = []

    async def start(profile: str | Profile, count: int, *, first_unit: int = 1) -> SimBus:
        clock = SimClock()
        loaded = load_profile(profile) if isinstance(profile, str) else profile
        meters = make_meters(loaded, count, clock, first_unit=first_unit)
        port = free_port()
        server = tcp_server(meters, "127.0.0.1", port)
        await server.serve_forever(background=True)
        servers.append((server, meters))
        return SimBus(meters, server.trace_packet, f"127.0.0.1:{port}", clock)

    yield start
    await stop(servers)


@pytest.fixture
async def rtu_meters() -> AsyncIterator[SimFactory]:
    """N simulated meters behind a pseudo-terminal serial line (optionally paced at `baud`)."""
    stack = contextlib.AsyncExitStack()
    servers: list[Any] = []

    async def start(profile: str, count: int, *, baud: int = 9600, paced: bool = False) -> SimBus:
        clock = SimClock()
        meters = make_meters(load_profile(profile), count, clock)
        line = await stack.enter_async_context(VirtualSerialLine(baud=baud if paced else None))
        server = serial_server(meters, line.server_port, baud=baud)
        await server.serve_forever(background=True)
        servers.append((server, meters))
        return SimBus(meters, server.trace_packet, line.client_port, clock, line)

    yield start
    await stop(servers)
    await stack.aclose()
