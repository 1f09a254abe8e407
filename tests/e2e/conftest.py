"""One gateway-and-cloud harness per test on each broker/database pair (see link_harness.Link),
and the child processes a test starts (see processes.Processes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.link_harness import SERVER_VARIANTS, Link, link_on
from tests.e2e.processes import Processes


@pytest.fixture
async def link(mqtt_url: str, database_url: str, tmp_path: Path) -> AsyncIterator[Link]:
    async with Link(mqtt_url, database_url, tmp_path) as harness:
        yield harness


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[Processes]:
    children = Processes(tmp_path)
    try:
        yield children
    finally:
        await children.close()


@pytest.fixture(params=SERVER_VARIANTS)
async def process_link(
    request: pytest.FixtureRequest, processes: Processes, tmp_path: Path
) -> AsyncIterator[Link]:
    """A Link for a test whose gateway is a process: the embedded broker is one too.

    Its send window is small, so that much of a backlog waits in the outbox unsent: a
    gateway restarted from its store must send what was never acknowledged, not only resend
    what its dead predecessor had sent."""
    async with link_on(
        request.param, tmp_path, processes.broker, link={"window_records": 1000}
    ) as harness:
        yield harness
