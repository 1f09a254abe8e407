"""The cloud's MQTT clients (ingest workers, the command dispatcher, the CLI's sender)."""

from __future__ import annotations

import aiomqtt

from cloud.config import Settings
from protocols.mqtt.acl import client_id
from protocols.mqtt.url import parse_broker_url
from runtime.mqtt_client import mqtt_client


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
