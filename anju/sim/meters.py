"""Simulated Modbus meters: real pymodbus servers whose registers follow a load curve.

Values are computed when a request arrives, from the simulator's clock, so counters advance
between polls exactly as a real meter's would. Faults are set per meter at any time (from a test
or from `anju sim meters --fault`): no answer, an exception code, a corrupt frame, a slow answer,
a counter about to wrap at its digit count, or the meter swapped for a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from protocols.errors import ConfigError
from protocols.modbus.decode import encode_point
from protocols.modbus.profile import DataType, FunctionCode, Point, Profile

HOUR_S = 3600.0
REFRESH_S = 0.5  # `anju sim meters`: registers refresh twice a second, like a real meter
DAY_S = 86400.0
SWING = 0.6  # the daily curve's swing around its mean
# The exact integral of base * (1 + SWING * sin(2*pi*(t/DAY - PHASE))) needs this amplitude.
_AMPLITUDE_S = SWING * DAY_S / (2 * math.pi)
PHASE = 0.3  # peak in the evening


class Fault(StrEnum):
    NONE = "none"
    NO_ANSWER = "no-answer"  # the request is swallowed
    EXCEPTION = "exception"  # a Modbus exception reply (`exception_code`)
    CORRUPT = "corrupt"  # the reply's last byte is flipped (RTU: CRC error)
    SLOW = "slow"  # the reply comes after `slow_s`


def _cycle_integral(t: float) -> float:
    return t - _AMPLITUDE_S * math.cos(2 * math.pi * (t / DAY_S - PHASE))


@dataclass
class SimMeter:
    """One meter's physics: a daily load curve and counters that integrate it."""

    profile: Profile
    unit_id: int
    clock: Callable[[], float]
    base_w: float = 400.0  # mean power (W); water meters use base_w / 1000 as mean flow (m3/h)
    initial_kwh: float = 1000.0
    started: float = field(default=0.0)
    fault: Fault = Fault.NONE
    exception_code: int = int(ExcCodes.DEVICE_FAILURE)
    slow_s: float = 0.5
    fault_replies: int | None = None  # the fault clears after this many replies (None: stays)
    # A real meter refreshes its registers every second or so; 0 computes them on every read.
    refresh_s: float = 0.0
    serial: str = ""
    # Reads of more registers than this are refused with exception 02, as some meters do.
    max_span: int | None = None

    def __post_init__(self) -> None:
        self.started = self.clock()
        self.serial = self.serial or f"SIM{self.unit_id:05d}"
        self._released = asyncio.Event()
        self._image: dict[FunctionCode, tuple[object, dict[int, int]]] = {}

    def spend_fault(self) -> None:
        """One reply carried the fault; clear it when its count runs out."""
        if self.fault_replies is not None:
            self.fault_replies -= 1
            if self.fault_replies <= 0:
                self.fault, self.fault_replies = Fault.NONE, None

    def release(self) -> None:
        """Send every held slow reply now (a test's teardown, so no handler outlives it)."""
        self._released.set()

    # ---- physics -------------------------------------------------------------------------

    def power_w(self, t: float) -> float:
        day = (t % DAY_S) / DAY_S
        return self.base_w * (1.0 + SWING * math.sin(2 * math.pi * (day - PHASE)))

    def energy_kwh(self, t: float) -> float:
        """The counter before wrapping: initial value plus the exact integral of the curve."""
        joules = self.base_w * (_cycle_integral(t) - _cycle_integral(self.started))
        return self.initial_kwh + joules / (HOUR_S * 1000.0)

    def counter(self, point: Point, t: float) -> float:
        value = self.energy_kwh(t)
        if point.digits is not None:
            value %= 10.0**point.digits
        return value

    def value(self, point: Point, t: float) -> float | str:
        kind = point.kind
        if point.type is DataType.STRING:
            return self.serial
        if "export" in kind or "reverse" in kind:
            return 0.0
        if kind.startswith(("energy", "water_total")):
            return self.counter(point, t)
        power = self.power_w(t)
        return {
            "voltage_v": 230.0,
            "frequency_hz": 50.0,
            "power_factor": 0.98,
            "velocity_ms": 1.2,
            "flow_m3h": power / 1000.0,
            "current_a": power / 230.0,
            "apparent_power_va": power / 0.98,
        }.get(kind, power if kind.startswith("power") else 0.0)

    # ---- faults a test or the CLI can trigger ----------------------------------------------

    def roll_over_soon(self, t: float, *, margin_kwh: float = 0.001) -> None:
        """Put the counters just below their wrap point, so a later read sees them wrap."""
        digits = [p.digits for p in self.profile.points if p.digits is not None]
        if not digits:
            raise ConfigError(f"{self.profile.model}: no counter has a digit count to wrap at")
        self.initial_kwh += 10.0 ** min(digits) - margin_kwh - self.energy_kwh(t)

    def swap(self, t: float, *, initial_kwh: float = 0.0, serial: str = "") -> None:
        """Replace the meter with a new one: counters restart, serial number changes."""
        self.initial_kwh = initial_kwh
        self.started = t
        self.serial = serial or f"NEW{self.unit_id:05d}"

    # ---- register image --------------------------------------------------------------------

    def registers(self, function: FunctionCode, t: float) -> dict[int, int]:
        if self.refresh_s > 0:
            t -= t % self.refresh_s
            key = (function, t, self.initial_kwh, self.started)
            cached = self._image.get(function)
            if cached is not None and cached[0] == key:
                return cached[1]
            self._image[function] = (key, self._compute(function, t))
            return self._image[function][1]
        return self._compute(function, t)

    def _compute(self, function: FunctionCode, t: float) -> dict[int, int]:
        words: dict[int, int] = {}
        for point in self.profile.points:
            if point.function is function:
                for i, word in enumerate(encode_point(point, self.value(point, t))):
                    words[point.address + i] = word
        return words

    def device(self) -> SimDevice:
        size = max(p.end for p in self.profile.points)

        def block() -> list[SimData]:
            return [SimData(0, count=size, datatype=SimType.REGISTERS)]

        async def action(
            function_code: int,
            start_address: int,
            _address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            if set_values is not None:
                return ExcCodes.ILLEGAL_FUNCTION
            if self.fault is Fault.SLOW:
                self.spend_fault()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), self.slow_s)
            if self.fault is Fault.EXCEPTION:
                self.spend_fault()
                return ExcCodes(self.exception_code)
            if self.max_span is not None and count > self.max_span:
                return ExcCodes.ILLEGAL_ADDRESS
            for addr, word in self.registers(FunctionCode(function_code), self.clock()).items():
                registers[addr - start_address] = word
            return None

        coils = [SimData(0, count=1, datatype=SimType.BITS)]
        return SimDevice(
            id=self.unit_id,
            simdata=(coils, list(coils), block(), block()),
            action=action,
        )


class FaultInjector:
    """A pymodbus `trace_packet` hook that drops or corrupts replies of faulty meters."""

    def __init__(self, meters: list[SimMeter], *, rtu: bool) -> None:
        self._meters = {m.unit_id: m for m in meters}
        self._rtu = rtu
        self._unit_byte = 0 if rtu else 6  # where the unit id sits: RTU first, TCP after MBAP
        self.replies: dict[int, int] = {}  # frames sent per unit id: the wire's own request count

    def __call__(self, sending: bool, packet: bytes) -> bytes:
        if not sending or len(packet) <= self._unit_byte:
            return packet
        unit = packet[self._unit_byte]
        self.replies[unit] = self.replies.get(unit, 0) + 1
        meter = self._meters.get(unit)
        if meter is None or meter.fault not in {Fault.NO_ANSWER, Fault.CORRUPT}:
            return packet
        fault = meter.fault
        meter.spend_fault()
        if fault is Fault.NO_ANSWER:
            return b""
        if fault is Fault.CORRUPT:
            if self._rtu:  # a flipped byte fails the CRC
                return packet[:-1] + bytes([packet[-1] ^ 0xFF])
            # TCP has no CRC: break the frame instead, an MBAP length that overruns the data
            length = int.from_bytes(packet[4:6], "big") + 7
            return packet[:4] + length.to_bytes(2, "big") + packet[6:]
        return packet


def tcp_server(meters: list[SimMeter], host: str, port: int) -> ModbusTcpServer:
    return ModbusTcpServer(
        [m.device() for m in meters],
        address=(host, port),
        trace_packet=FaultInjector(meters, rtu=False),
    )


def serial_server(meters: list[SimMeter], device: str, *, baud: int) -> ModbusSerialServer:
    return ModbusSerialServer(
        [m.device() for m in meters],
        framer=FramerType.RTU,
        port=device,
        baudrate=baud,
        trace_packet=FaultInjector(meters, rtu=True),
    )


def make_meters(
    profile: Profile,
    count: int,
    clock: Callable[[], float],
    *,
    first_unit: int = 1,
    refresh_s: float = 0.0,
) -> list[SimMeter]:
    """`count` meters with unit ids from `first_unit`, each with its own load and reading."""
    return [
        SimMeter(
            profile,
            unit_id=first_unit + i,
            clock=clock,
            base_w=300.0 + 40.0 * (i % 9),
            initial_kwh=1000.0 + 137.0 * i,
            refresh_s=refresh_s,
        )
        for i in range(count)
    ]


@dataclass(frozen=True)
class FaultSpec:
    """`UNIT:KIND[:ARG]` from the command line, e.g. `3:no-answer`, `2:exception:6`,
    `4:slow:2.5`, `5:corrupt`, `6:rollover`, `7:swap:30` (swap after 30 s), `8:max-span:20`
    (reads of more than 20 registers refused with exception 02)."""

    unit_id: int
    kind: str
    arg: float | None = None

    KINDS = (*(f.value for f in Fault if f is not Fault.NONE), "rollover", "swap", "max-span")

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        unit, _, rest = text.partition(":")
        kind, _, arg = rest.partition(":")
        if not unit.isdigit() or kind not in cls.KINDS:
            raise ConfigError(
                f"bad fault {text!r}: expected UNIT:KIND[:ARG], KIND one of {', '.join(cls.KINDS)}"
            )
        try:
            value = float(arg) if arg else None
        except ValueError:
            raise ConfigError(f"bad fault {text!r}: {arg!r} is not a number") from None
        return cls(int(unit), kind, value)

    async def apply(self, meter: SimMeter) -> None:
        """Set the fault now; a swap waits `arg` seconds (default 30) first."""
        if self.kind == "max-span":
            meter.max_span = 20 if self.arg is None else int(self.arg)
        elif self.kind == "rollover":
            meter.roll_over_soon(meter.clock(), margin_kwh=meter.base_w / 1000.0 / 60.0)
        elif self.kind == "swap":
            await asyncio.sleep(30.0 if self.arg is None else self.arg)
            meter.swap(meter.clock())
        else:
            meter.fault = Fault(self.kind)
            if meter.fault is Fault.EXCEPTION and self.arg is not None:
                meter.exception_code = int(self.arg)
            if meter.fault is Fault.SLOW and self.arg is not None:
                meter.slow_s = self.arg


async def serve_meters(
    profile: Profile,
    count: int,
    *,
    host: str = "127.0.0.1",
    port: int | Sequence[int] = 15020,
    serial: str | None = None,
    baud: int = 9600,
    line_timing: bool = False,
    faults: tuple[FaultSpec, ...] = (),
    clock: Callable[[], float] = time.time,
    ready: Callable[[str], None] = lambda _where: None,
) -> None:
    """Serve until cancelled. `serial="pty"` makes a virtual line and tells `ready` its far end.

    Over TCP, each port is one host (an RS-485-to-TCP converter) with its own `count` meters;
    a fault applies to its unit id on every host. One process serving many hosts answers
    faster than as many processes sharing a core (one event loop instead of a context switch
    per request), which is how the benchmark keeps the simulator out of the way.
    """
    from anju.sim.serial import VirtualSerialLine  # noqa: PLC0415 - only serial runs need pty

    ports = [port] if isinstance(port, int) else list(port)
    n_hosts = len(ports) if serial is None else 1  # a serial line is one bus
    hosts = [make_meters(profile, count, clock, refresh_s=REFRESH_S) for _ in range(n_hosts)]
    for spec in faults:
        if not 1 <= spec.unit_id <= count:
            raise ConfigError(f"fault for unit {spec.unit_id}: no such meter (1..{count})")
    line: VirtualSerialLine | None = None
    servers: list[ModbusTcpServer | ModbusSerialServer]
    if serial is None:
        servers = [tcp_server(meters, host, p) for meters, p in zip(hosts, ports, strict=True)]
        where = ", ".join(f"modbus-tcp://{host}:{p}" for p in ports)
    elif serial == "pty":
        line = VirtualSerialLine(baud=baud if line_timing else None)
        line.open()
        servers = [serial_server(hosts[0], line.server_port, baud=baud)]
        where = line.client_port
    else:
        servers = [serial_server(hosts[0], serial, baud=baud)]
        where = serial
    try:
        async with asyncio.TaskGroup() as tg:
            for spec in faults:
                for meters in hosts:
                    meter = meters[spec.unit_id - 1]
                    tg.create_task(spec.apply(meter), name=f"fault-{spec.unit_id}")
            for server in servers:
                await server.serve_forever(background=True)
            ready(where)
            tg.create_task(asyncio.Event().wait(), name="sim-serve")
    finally:
        for server in servers:
            await server.shutdown()  # type: ignore[no-untyped-call]
        if line is not None:
            line.close()
        await asyncio.sleep(0)
