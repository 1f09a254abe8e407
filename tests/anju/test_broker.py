"""The embedded broker closes what amqtt leaves open."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest

from anju.broker import embedded_broker
from tests.conftest import free_port
from tests.e2e.link_harness import wait_until

pytestmark = pytest.mark.timeout(30)


async def test_a_client_gone_before_connect_leaves_no_open_socket() -> None:
    """A port probe (connect, then close without CONNECT): amqtt 0.12 never closed its side."""
    port = free_port()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        async with embedded_broker("127.0.0.1", port) as broker:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()

            async def probe_handled() -> bool:
                return not broker._writers

            await wait_until(probe_handled, 10, "the broker to finish with the probe")
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
