"""A signed command's round trip: issued in the cloud → dispatched by ingest → run by the
gateway → its result recorded. Median of PINGS pings on an embedded broker of its own and
SQLite, with our MQTT clients as shipped (TCP_NODELAY) and, as the baseline in the same
process, with Nagle left on (each hop then waits for the peer's delayed ACK).

Run: `python -m bench commands` (env: BENCH_PINGS, default 30).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import runtime.mqtt_client
from tests.e2e.command_harness import Clock, Cloud, gateway, private_link

PINGS = int(os.environ.get("BENCH_PINGS", "30"))


@contextmanager
def nagle() -> Iterator[None]:
    """Our clients without TCP_NODELAY (the option tuple is read as each client is made)."""
    saved = runtime.mqtt_client.NO_DELAY
    runtime.mqtt_client.NO_DELAY = ()
    try:
        yield
    finally:
        runtime.mqtt_client.NO_DELAY = saved


async def round_trips(tmp: Path) -> list[float]:
    clock = Clock()
    times = []
    async with (
        private_link(tmp) as link,
        link.ingest(commands=True) as worker,
        gateway(link, clock),
    ):
        cloud = Cloud(link, worker, clock)
        for _ in range(PINGS):
            clock.t = datetime.now(UTC)  # the gateway judges expiry by this
            started = time.perf_counter()
            ping = cloud.issue()
            while cloud.command(ping).state != "done":  # noqa: ASYNC110 - a database row
                await asyncio.sleep(0.002)
            times.append(time.perf_counter() - started)
    return times


def median_ms() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        times = asyncio.run(round_trips(Path(tmp)))
    return statistics.median(times) * 1000


def main() -> None:
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with nagle():
        baseline = median_ms()
    shipped = median_ms()
    print(f"ping round trip, median of {PINGS}: Nagle on (baseline) {baseline:.1f} ms,"
          f" TCP_NODELAY {shipped:.1f} ms, ratio {shipped / baseline:.2f}")  # fmt: skip
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
