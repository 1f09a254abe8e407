"""A virtual RS-485 line: two pseudo-terminals joined like a null modem.

The simulator opens one end (`server_port`), a gateway or `anju edge read` the other
(`client_port`), both as ordinary serial devices. With `baud` set the line is paced like the real
one: half duplex, 11 bits per character, a chunk arrives when its last character would have, and
a request reaches the meter t3.5 later (how an RTU slave detects the end of a frame).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from types import TracebackType

from protocols.modbus.rtu import char_time_s, silent_interval_s

READ_CHUNK = 4096


class VirtualSerialLine:
    def __init__(self, *, baud: int | None = None) -> None:
        self.baud = baud
        self._fds: list[int] = []
        self._masters: tuple[int, int] = (-1, -1)
        self._paths: tuple[str, str] = ("", "")
        self._busy_until = 0.0
        self._pending: set[asyncio.TimerHandle] = set()
        self.chars = 0  # characters carried, both directions
        # (loop time, "sent" | "delivered", from client?) per chunk: for timing checks
        self.events: list[tuple[float, str, bool]] = []

    @property
    def server_port(self) -> str:
        return self._paths[0]

    @property
    def client_port(self) -> str:
        return self._paths[1]

    def open(self) -> None:
        loop = asyncio.get_running_loop()
        ends = []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave)
            self._fds += [master, slave]
            ends.append((master, os.ttyname(slave)))
        (m0, p0), (m1, p1) = ends
        self._masters, self._paths = (m0, m1), (p0, p1)
        loop.add_reader(m0, self._forward, m0, m1)
        loop.add_reader(m1, self._forward, m1, m0)

    def close(self) -> None:
        if not self._fds:
            return
        loop = asyncio.get_running_loop()
        for master in self._masters:
            loop.remove_reader(master)
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    async def __aenter__(self) -> VirtualSerialLine:
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _forward(self, src: int, dst: int) -> None:
        try:
            data = os.read(src, READ_CHUNK)
        except OSError:
            return  # the other side closed; nothing to carry
        self.chars += len(data)
        loop = asyncio.get_running_loop()
        from_client = src == self._masters[1]
        self.events.append((loop.time(), "sent", from_client))
        if self.baud is None:
            self._write(dst, data)
            return
        arrive = max(loop.time(), self._busy_until) + len(data) * char_time_s(self.baud)
        self._busy_until = arrive
        if from_client:
            # A meter knows a request has ended only after t3.5 of silence; the master's own
            # gap before its next request is the poller's to keep.
            arrive += silent_interval_s(self.baud)
        handle: asyncio.TimerHandle
        handle = loop.call_at(arrive, lambda: self._deliver(handle, dst, data, from_client))
        self._pending.add(handle)

    def _deliver(
        self, handle: asyncio.TimerHandle, dst: int, data: bytes, from_client: bool
    ) -> None:
        self._pending.discard(handle)
        self.events.append((asyncio.get_running_loop().time(), "delivered", from_client))
        self._write(dst, data)

    @staticmethod
    def _write(dst: int, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(dst, data)
