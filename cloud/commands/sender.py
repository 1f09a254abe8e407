"""Publishing one command now, over a connection of its own (the CLI); waiting for its result.

The API leaves sending to the dispatcher (`dispatcher.py`); this is for a shell with no server
running. Either way the command is claimed first, so it is published once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiomqtt
from sqlalchemy.orm import sessionmaker

from cloud.commands import service
from cloud.config import Settings
from cloud.models import GatewayCommand
from cloud.models.commands import FINAL_STATES
from cloud.mqtt import cloud_mqtt_client
from protocols.mqtt.topics import Kind, topic
from runtime.mqtt_client import connection

WAIT_POLL_S = 0.2


async def send_now(
    settings: Settings, sessions: sessionmaker[Any], command_id: str, now: datetime
) -> bool:
    """Publish a queued command; False if it was not queued (sent already, or expired)."""

    def claim() -> list[tuple[str, str, str]]:
        with sessions.begin() as session:
            return service.claim(session, now, only=command_id)

    claimed = await asyncio.to_thread(claim)
    if not claimed:
        return False
    ((_, gateway_id, payload),) = claimed
    try:
        client = cloud_mqtt_client(settings, f"anju-send-{uuid.uuid4().hex[:8]}")
        async with connection(client):
            await client.publish(topic(gateway_id, Kind.CMD), payload.encode(), qos=1)
    except aiomqtt.MqttError:
        with sessions.begin() as session:
            service.unclaim(session, [command_id])
        raise
    return True


async def wait_for_result(
    sessions: sessionmaker[Any],
    command_id: str,
    *,
    until: datetime,
    now: Callable[[], datetime],
) -> GatewayCommand:
    """The command once it is settled, or as it stands at `until` (an ingest worker records
    results; without one running, none arrive)."""

    def load() -> GatewayCommand:
        with sessions() as session:
            row: GatewayCommand = session.get_one(GatewayCommand, command_id)
            return row

    while True:
        row = await asyncio.to_thread(load)
        if row.state in FINAL_STATES or now() >= until:
            return row
        await asyncio.sleep(WAIT_POLL_S)
