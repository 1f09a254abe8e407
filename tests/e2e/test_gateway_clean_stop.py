"""A gateway stopped with SIGTERM says so in its retained `up/state`: a clean DISCONNECT
discards the Will, so without its own last word it would stay "online" on the broker forever."""

from __future__ import annotations

import asyncio
import signal
import uuid

import pytest
import yaml

from protocols.mqtt import messages as msg
from protocols.mqtt.topics import Kind, topic
from tests.e2e.link_harness import Link, mqtt_client, wait_until
from tests.e2e.processes import Processes

pytestmark = pytest.mark.timeout(90)


async def retained_state(link: Link) -> msg.State | None:
    """What a subscriber that arrives now is handed as the gateway's retained state."""
    async with mqtt_client(link.mqtt_url, f"probe-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(topic(link.gateway_id, Kind.STATE), qos=1)
        try:
            async with asyncio.timeout(1.0):
                message = await anext(client.messages)
        except TimeoutError:
            return None
    assert isinstance(message.payload, bytes)
    return msg.decode(msg.State, message.payload) if message.payload else None


async def test_sigterm_leaves_the_retained_state_offline(
    process_link: Link, processes: Processes
) -> None:
    link = process_link
    path = link.tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(link.config.model_dump(mode="json")))
    processes.start("gateway", "edge", "run", "--config", str(path))

    async def online() -> bool:
        state = await retained_state(link)
        return state is not None and state.online

    await wait_until(online, 45, "the gateway's retained online state", poll_s=0.2)
    assert await processes.stop("gateway", signal.SIGTERM) == 0, processes.log("gateway")

    state = await retained_state(link)
    assert state is not None, "no retained state after the stop"
    assert not state.online, processes.log("gateway")
    assert state.gateway_id == link.gateway_id
