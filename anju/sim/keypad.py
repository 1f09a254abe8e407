"""A serial door keypad on a pseudo-terminal, for tests and demos.

The gateway opens `port` as it opens a real keypad's serial device (`edge.door.keypad.
SerialKeypad`); the simulator holds the other end and sends what a keypad sends: the keys of an
entry and `#`, as one line or key by key. It reads the gateway's answers (`OK`, `NO`, `WAIT`).
"""

from __future__ import annotations

import contextlib
import os
import tty

from runtime.fdio import read_when_ready


class SimulatedKeypad:
    def __init__(self) -> None:
        self._master = -1
        self._slave = -1
        self.port = ""
        self._buffer = b""

    def open(self) -> None:
        self._master, self._slave = os.openpty()
        # Raw from the start, as a serial line is: keys sent before the gateway opens the port
        # must not wait in a terminal's line editor.
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)

    def close(self) -> None:
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1

    def __enter__(self) -> SimulatedKeypad:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def press(self, keys: str) -> None:
        """Send keys (`1203*246810#`) as the keypad would, all at once."""
        os.write(self._master, keys.encode("ascii"))

    def send(self, data: bytes) -> None:
        """Raw bytes on the line (noise, a keypad that sends lines with CR LF)."""
        os.write(self._master, data)

    async def answer(self) -> str:
        """The gateway's next answer line (without CR LF)."""
        while b"\n" not in self._buffer:
            self._buffer += await read_when_ready(self._master, 256)
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.rstrip(b"\r").decode("ascii")

    async def enter(self, keys: str) -> str:
        """Type one entry (its `#` added) and wait for the gateway's answer."""
        self.press(keys + "#")
        return await self.answer()
