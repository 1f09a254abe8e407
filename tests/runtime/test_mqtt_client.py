"""Our MQTT clients, the gateway's and the cloud's, send small packets at once (TCP_NODELAY).

With Nagle, each hop of a command and its result waited for the peer's delayed ACK (40 ms on
Linux); `bench commands` measures the round trip both ways. Here: the option is on the socket
of each client once it is connected, and off on a client made without it (the control).
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from anju.broker import embedded_broker
from cloud.config import Settings
from cloud.mqtt import cloud_mqtt_client
from edge.config import GatewayConfig
from edge.uplink.client import gateway_mqtt_client
from protocols.mqtt import messages as msg
from runtime.mqtt_client import connection
from tests.conftest import free_port

pytestmark = pytest.mark.timeout(30)


def nodelay(client: aiomqtt.Client) -> int:
    sock = client._client.socket()
    assert isinstance(sock, socket.socket)
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


async def test_the_gateway_and_the_cloud_clients_set_tcp_nodelay(tmp_path: Path) -> None:
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    config = GatewayConfig.model_validate(
        {
            "gateway_id": "gw-nodelay",
            "mqtt": {"url": url, "protocol": "3.1.1"},
            "store": {"path": str(tmp_path / "gw.db")},
        }
    )
    will = msg.State(gateway_id="gw-nodelay", seq=0, ts=datetime.now(UTC), online=False)
    settings = Settings(
        env="development",
        database_url=f"sqlite:///{tmp_path / 'cloud.db'}",
        mqtt_url=url,
        mqtt_protocol="3.1.1",
    )
    async with embedded_broker("127.0.0.1", port):
        ours = [gateway_mqtt_client(config, will), cloud_mqtt_client(settings, "anju-nodelay")]
        for client in ours:
            async with connection(client):
                assert nodelay(client) != 0
        plain = aiomqtt.Client("127.0.0.1", port, identifier="plain")
        async with connection(plain):
            assert nodelay(plain) == 0
