"""`anju` commands as child processes of a test: a gateway the test can SIGKILL, and the servers
around it (amqtt broker, simulated meters) out of the test's own process, so that no server
socket of theirs is left for the test's leak guards to find when a client vanishes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from tests.conftest import free_port
from tests.e2e.link_harness import as_async, wait_until

STOP_GRACE_S = 15.0
READY_S = 30.0  # a Python process importing its stack on a loaded 2-core machine


async def accepting(port: int) -> bool:
    """Whether something listens on the loopback `port` (a connection is made and closed)."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class Processes:
    """The `anju` processes one test started; `close` stops and reaps every one still running."""

    def __init__(self, logs: Path) -> None:
        self._logs = logs
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """`python -m anju ARGS`, its output appended to `<logs>/<name>.log`."""
        assert name not in self._children or self._children[name].poll() is not None
        with (self._logs / f"{name}.log").open("ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "anju", *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._children[name] = child
        return child

    async def serve(self, name: str, port: int, *args: str) -> subprocess.Popen[bytes]:
        """Start a server and return once its port accepts connections."""
        child = self.start(name, *args)

        async def ready() -> bool:
            assert child.poll() is None, f"{name} exited: {self.log(name)}"
            return await accepting(port)

        await wait_until(ready, READY_S, f"{name} to listen on port {port}", poll_s=0.1)
        return child

    @contextlib.asynccontextmanager
    async def broker(self) -> AsyncIterator[str]:
        """An embedded (amqtt) broker as `anju broker`; yields its URL."""
        port = free_port()
        await self.serve("broker", port, "broker", "--port", str(port))
        try:
            yield f"mqtt://127.0.0.1:{port}"
        finally:
            await self.stop("broker")

    async def stop(self, name: str, sig: signal.Signals = signal.SIGTERM) -> int:
        """Signal a child and wait for it (SIGKILL after a grace period); its exit code."""
        child = self._children[name]
        if child.poll() is None:
            child.send_signal(sig)
        try:
            await wait_until(as_async(lambda: child.poll() is not None), STOP_GRACE_S, name)
        except AssertionError:
            child.kill()
        return child.wait()

    def log(self, name: str, tail: int = 4000) -> str:
        return (self._logs / f"{name}.log").read_text(errors="replace")[-tail:]

    async def close(self) -> None:
        """Newest first, so a gateway stops before the broker and meters it talks to."""
        for name in reversed(list(self._children)):
            await self.stop(name)
