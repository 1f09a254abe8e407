"""The cloud's MQTT clients (ingest workers, the command dispatcher, the CLI's sender)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

import aiomqtt

from cloud.config import Settings
from protocols.mqtt.acl import client_id
from protocols.mqtt.url import parse_broker_url
from runtime.backoff import Backoff
from runtime.mqtt_client import connection, mqtt_client

log = logging.getLogger(__name__)

RECONNECT_S = 0.5  # the backoff's first window after a lost connection or a failure
RECONNECT_MAX_S = 30.0


def cloud_mqtt_client(settings: Settings, identifier: str) -> aiomqtt.Client:
    """A client with the cloud's connection settings (ingest workers, the command sender),
    its id one of its login's: many processes share the login, each with its own session."""
    address = parse_broker_url(settings.mqtt_url)
    return mqtt_client(
        address,
        identifier=client_id(settings.mqtt_username or address.username, identifier),
        username=settings.mqtt_username,
        password=settings.mqtt_password,
        v5=settings.mqtt_protocol == "5",
        keepalive=settings.mqtt_keepalive_s,
        ca_file=settings.mqtt_ca_file,
    )


async def stay_connected(
    settings: Settings,
    identifier: str,
    session: Callable[[aiomqtt.Client], Awaitable[None]],
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    backoff: Backoff | None = None,
) -> NoReturn:
    """Run `session` on a connection until cancelled. A lost connection or any failure (a
    publisher must outlive its own bugs; logged here) waits a capped, jittered backoff, which
    starts afresh once a connection is made."""
    backoff = backoff or Backoff(base=RECONNECT_S, cap=RECONNECT_MAX_S)
    while True:
        try:
            async with connection(cloud_mqtt_client(settings, identifier)) as client:
                backoff.reset()
                await session(client)
        except aiomqtt.MqttError as exc:
            log.warning("[%s] broker connection lost (%s); retrying", identifier, exc)
        except Exception:
            log.exception("[%s] failed; restarting", identifier)
        await sleep(backoff.next_delay())
