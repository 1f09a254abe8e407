"""One Modbus connection (a TCP host or a serial port) behind a small seam: `read(request)`.

This is the only module that knows pymodbus: its exceptions and error replies are mapped here to
protocols.modbus.errors, and the RTU rules it does not enforce are enforced here: one transaction
at a time per port, with the 3.5-character silent interval between frames.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)

from protocols.modbus.errors import (
    MeterConnectionError,
    MeterExceptionCodeError,
    MeterFrameError,
    MeterTimeoutError,
)
from protocols.modbus.plan import ReadRequest
from protocols.modbus.profile import MAX_READ_REGISTERS, FunctionCode
from protocols.modbus.rtu import silent_interval_s

# pymodbus logs every timeout at ERROR; failures are translated here and the poller logs each
# meter's state changes once, so its own chatter would only repeat them on every retry.
logging.getLogger("pymodbus.logging").setLevel(logging.CRITICAL)

Trace = Callable[[bool, bytes], bytes]

_WORDS = {n: struct.Struct(f">{n}H") for n in range(126)}


def _decode_registers(pdu: ReadHoldingRegistersResponse, data: bytes) -> None:
    """A FC03/FC04 reply decoded with one unpack: pymodbus unpacks it one register at a time,
    which was the largest cost of a read after the socket itself (20 us for 76 registers)."""
    count = data[0] // 2 if data else 0
    if not data or data[0] >= len(data) or data[0] % 2 or count > MAX_READ_REGISTERS:
        ReadHoldingRegistersResponse.decode(pdu, data)  # its own error for a bad byte count
        return
    pdu.registers = list(_WORDS[count].unpack_from(data, 1))


class _FastHoldingRegisters(ReadHoldingRegistersResponse):
    decode = _decode_registers


class _FastInputRegisters(ReadInputRegistersResponse):
    decode = _decode_registers


class Transport(Protocol):
    """What a poller needs from a bus connection."""

    name: str

    async def read(self, request: ReadRequest) -> list[int]: ...

    def close(self) -> None: ...


class PymodbusTransport:
    def __init__(
        self,
        name: str,
        make_client: Callable[[Trace], AsyncModbusTcpClient | AsyncModbusSerialClient],
        *,
        gap_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._client = make_client(self.trace_packet)
        self._client.register(_FastHoldingRegisters)
        self._client.register(_FastInputRegisters)
        self._gap_s = gap_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._idle_since = 0.0
        self._received = b""

    def trace_packet(self, sending: bool, data: bytes) -> bytes:
        """pymodbus hook: remember what arrived, so a timeout with bytes is a framing error."""
        if not sending:
            self._received = data
        return data

    async def read(self, request: ReadRequest) -> list[int]:
        async with self._lock:
            try:
                return await self._read(request)
            finally:
                self._idle_since = self._clock()

    async def _read(self, request: ReadRequest) -> list[int]:
        unit = request.unit_id
        if not self._client.connected and not await self._client.connect():
            raise MeterConnectionError(unit, f"cannot open {self.name}")
        wait = self._idle_since + self._gap_s - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)
        self._received = b""
        call = (
            self._client.read_input_registers
            if request.function is FunctionCode.INPUT
            else self._client.read_holding_registers
        )
        try:
            reply: Any = await call(request.address, count=request.count, device_id=unit)
        except ConnectionException as exc:
            raise MeterConnectionError(unit, f"{self.name}: {exc}") from None
        except ModbusIOException as exc:
            if self._received:
                raise MeterFrameError(
                    unit, f"corrupt reply {self._received[:32].hex(' ')} ({exc})"
                ) from None
            raise MeterTimeoutError(unit, f"no reply on {self.name}") from None
        except ModbusException as exc:
            raise MeterFrameError(unit, str(exc)) from None
        if reply.isError():
            raise MeterExceptionCodeError(
                unit, int(request.function), int(getattr(reply, "exception_code", 0))
            )
        if reply.function_code != request.function:
            raise MeterFrameError(
                unit, f"asked with function {request.function}, reply has {reply.function_code}"
            )
        registers: list[int] = list(reply.registers)
        if len(registers) != request.count:
            raise MeterFrameError(
                unit, f"asked for {request.count} registers, got {len(registers)}"
            )
        return registers

    def close(self) -> None:
        self._client.close()


def tcp_transport(host: str, port: int, *, timeout_s: float) -> PymodbusTransport:
    def client(trace: Trace) -> AsyncModbusTcpClient:
        return AsyncModbusTcpClient(
            host,
            port=port,
            timeout=timeout_s,
            retries=0,  # the poller retries within its deadline
            reconnect_delay=0,  # reconnect on demand, not from a background task
            trace_packet=trace,
        )

    return PymodbusTransport(f"tcp://{host}:{port}", client)


def serial_transport(
    device: str,
    *,
    baud: int,
    timeout_s: float,
    parity: str = "N",
    stopbits: int = 1,
    bytesize: int = 8,
) -> PymodbusTransport:
    def client(trace: Trace) -> AsyncModbusSerialClient:
        return AsyncModbusSerialClient(
            device,
            baudrate=baud,
            parity=parity,
            stopbits=stopbits,
            bytesize=bytesize,
            timeout=timeout_s,
            retries=0,
            reconnect_delay=0,
            trace_packet=trace,
        )

    return PymodbusTransport(f"rtu://{device}@{baud}", client, gap_s=silent_interval_s(baud))
