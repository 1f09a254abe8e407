"""Simulated Modbus meters: a real pymodbus server whose registers follow a load curve.

Values are computed when a request arrives, from the simulator's clock, so counters advance
between polls exactly as a real meter's would.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from protocols.modbus.decode import encode_point
from protocols.modbus.profile import FunctionCode, Point, Profile

HOUR_S = 3600.0


@dataclass
class SimMeter:
    """One meter's physics: a daily load curve and an energy counter that integrates it."""

    profile: Profile
    unit_id: int
    clock: Callable[[], float]
    base_w: float = 400.0
    initial_kwh: float = 1000.0
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def power_w(self, t: float) -> float:
        day = (t % 86400.0) / 86400.0
        return self.base_w * (1.0 + 0.6 * math.sin(2 * math.pi * (day - 0.3)))

    def energy_kwh(self, t: float) -> float:
        # Integral of the curve from `started` to `t` (the sine averages out over a day).
        hours = (t - self.started) / HOUR_S
        return self.initial_kwh + self.base_w * hours / 1000.0

    def value(self, point: Point, t: float) -> float:
        kind = point.kind
        if kind.startswith("energy") or kind.endswith("_m3"):
            return self.energy_kwh(t) if "export" not in kind else 0.0
        constants = {"voltage_v": 230.0, "frequency_hz": 50.0, "power_factor": 0.98}
        if kind in constants:
            return constants[kind]
        power = self.power_w(t)
        return {"current_a": power / 230.0, "power_w": power}.get(kind, 0.0)

    def registers(self, function: FunctionCode, t: float) -> dict[int, int]:
        words: dict[int, int] = {}
        for point in self.profile.points:
            if point.function is function:
                for i, word in enumerate(encode_point(point, self.value(point, t))):
                    words[point.address + i] = word
        return words

    def device(self) -> SimDevice:
        size = max(p.address + p.type.words for p in self.profile.points)

        def block() -> list[SimData]:
            return [SimData(0, count=size, datatype=SimType.REGISTERS)]

        async def action(
            function_code: int,
            start_address: int,
            _address: int,
            _count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            if set_values is not None:
                return ExcCodes.ILLEGAL_FUNCTION
            for addr, word in self.registers(FunctionCode(function_code), self.clock()).items():
                registers[addr - start_address] = word
            return None

        coils = [SimData(0, count=1, datatype=SimType.BITS)]
        return SimDevice(
            id=self.unit_id,
            simdata=(coils, list(coils), block(), block()),
            action=action,
        )


def tcp_server(meters: list[SimMeter], host: str, port: int) -> ModbusTcpServer:
    return ModbusTcpServer([m.device() for m in meters], address=(host, port))


async def serve_meters(
    profile: Profile, count: int, host: str, port: int, clock: Callable[[], float] = time.time
) -> None:
    meters = [SimMeter(profile, unit_id=i + 1, clock=clock) for i in range(count)]
    server = tcp_server(meters, host, port)
    try:
        await server.serve_forever()
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
        await asyncio.sleep(0)
