"""Reading a non-blocking file descriptor (a tty, a pseudo-terminal) from the event loop."""

from __future__ import annotations

import asyncio
import os


async def read_when_ready(fd: int, size: int) -> bytes:
    """`os.read(fd, size)`, waiting on the loop (never in a thread) until there is data.
    OSErrors other than "nothing yet" are the caller's."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, size)
        except BlockingIOError:
            pass
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, _wake, ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)
