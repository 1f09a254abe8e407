"""One poller per Modbus bus: read each meter, decode, commit readings to the outbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge.config import ModbusBus
from edge.link.outbox import Outbox
from edge.meters.profiles import load_profile
from protocols.modbus.decode import decode_point
from protocols.modbus.profile import FunctionCode, Profile

log = logging.getLogger(__name__)


class BusPoller:
    def __init__(
        self,
        bus: ModbusBus,
        outbox: Outbox,
        *,
        now: Callable[[], datetime],
        on_stored: Callable[[], None] = lambda: None,
    ) -> None:
        self._bus = bus
        self._outbox = outbox
        self._now = now
        self._on_stored = on_stored
        self._profiles: dict[str, Profile] = {d.id: load_profile(d.profile) for d in bus.devices}

    async def run(self) -> None:
        host, port = self._bus.tcp_address
        client = AsyncModbusTcpClient(host, port=port, timeout=self._bus.timeout_s, retries=1)
        try:
            while True:
                await self.poll_once(client)
                await asyncio.sleep(self._bus.poll_interval_s)
        finally:
            client.close()

    async def poll_once(self, client: AsyncModbusTcpClient) -> int:
        if not client.connected:
            await client.connect()
        records: list[dict[str, Any]] = []
        for device in self._bus.devices:
            ts = self._now().isoformat()
            for point in self._profiles[device.id].points:
                read = (
                    client.read_input_registers
                    if point.function is FunctionCode.INPUT
                    else client.read_holding_registers
                )
                try:
                    rr = await read(point.address, count=point.type.words, device_id=device.unit_id)
                except ModbusException as exc:
                    log.warning("[%s] %s: %s", self._bus.name, device.id, exc)
                    break
                if rr.isError():
                    log.warning("[%s] %s: error response %s", self._bus.name, device.id, rr)
                    break
                records.append(
                    {
                        "meter": device.id,
                        "point": point.name,
                        "value": decode_point(point, rr.registers),
                        "unit": point.unit,
                        "ts": ts,
                    }
                )
        if records:
            await asyncio.to_thread(self._outbox.append, "reading", records)
            self._on_stored()
        return len(records)
