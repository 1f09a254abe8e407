"""The uplink cancelled while it connects must close its socket (aiomqtt 2.5 leaves it open)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.config import GatewayConfig
from edge.link.outbox import Outbox
from edge.link.uplink import Uplink
from tests.e2e.link_harness import stop, wait_until

pytestmark = pytest.mark.timeout(30)


async def test_cancel_while_waiting_for_connack_closes_the_socket(tmp_path: Path) -> None:
    """A broker that accepts TCP but never answers CONNECT; the uplink is stopped meanwhile.

    The broker's side must then see the connection end (EOF), not a socket left open.
    """
    accepted: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append((reader, writer))

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = GatewayConfig.model_validate(
        {
            "gateway_id": "gw-silent",
            "mqtt": {"url": f"mqtt://127.0.0.1:{port}", "keepalive_s": 5},
            "store": {"path": str(tmp_path / "gw.db")},
        }
    )
    outbox = Outbox(config.store.path)
    try:
        uplink = Uplink(config, outbox, now=lambda: datetime.now(UTC))
        task = asyncio.create_task(uplink.run(), name="uplink")

        async def connected() -> bool:
            return bool(accepted)

        await wait_until(connected, 10, "the uplink's TCP connection")
        await stop(task)
        assert not uplink.connected.is_set()
        reader = accepted[0][0]
        async with asyncio.timeout(2):  # well before keep-alive (5 s) would end it
            await reader.read()  # everything the client sent, then EOF once it closed
        assert reader.at_eof()
    finally:
        for _, writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
        outbox.close()
