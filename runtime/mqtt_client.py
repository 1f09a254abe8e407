"""What our MQTT clients (the gateway's uplink, the cloud's ingest and command sender) need from
aiomqtt and paho beyond what they do by themselves.

- TCP_NODELAY: with Nagle, a small packet waited for the broker's delayed ACK (40 ms on Linux) on
  each hop; a command's round trip fell from 90 to under 20 ms without it.
- TLS sockets that close when their handshake fails: paho runs the handshake itself and drops the
  SSL socket unclosed when it fails (a broker we do not trust), one per retry.
- paho's plain socket closed when connecting fails or is cancelled before the CONNACK, which
  aiomqtt 2.5 leaves to the garbage collector.
- Which refusals are about the login, so a caller can stop retrying at full speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.reasoncodes import ReasonCode

from protocols.mqtt.url import BrokerAddress

NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
# CONNACK codes for a login the broker will not take: MQTT 3.1.1 "bad user name or password",
# "not authorized"; MQTT 5 the same as reason codes 0x86, 0x87.
CREDENTIALS_REFUSED = frozenset({4, 5, 0x86, 0x87})


class _ClosingSSLSocket(ssl.SSLSocket):
    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verifies the broker against `ca_file`, or the system's trust store when it is None."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.sslsocket_class = _ClosingSSLSocket
    return context


def mqtt_client(
    address: BrokerAddress,
    *,
    identifier: str,
    username: str | None,
    password: str | None,
    v5: bool,
    keepalive: int,
    ca_file: Path | None,
    **options: Any,
) -> aiomqtt.Client:
    """A client for `address` as all of ours are made: TCP_NODELAY, our TLS sockets, the login
    given or else the URL's; `options` (a Will, session settings) go to aiomqtt as they are."""
    return aiomqtt.Client(
        hostname=address.host,
        port=address.port,
        username=username or address.username,
        password=password or address.password,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        keepalive=keepalive,
        tls_context=tls_context(ca_file) if address.tls else None,
        socket_options=NO_DELAY,
        **options,
    )


@contextlib.asynccontextmanager
async def connection(client: aiomqtt.Client) -> AsyncIterator[aiomqtt.Client]:
    """`async with client`, with paho's socket closed if the connect does not complete, and a
    cancel of the body kept as a cancel: aiomqtt's `__aexit__` may replace it with an MqttError
    (its DISCONNECT failing), which a reconnect loop would take for a lost connection."""
    entered = cancelled = False
    try:
        async with client:
            entered = True
            try:
                yield client
            except asyncio.CancelledError:
                cancelled = True
                raise
    except aiomqtt.MqttError:
        if cancelled:
            raise asyncio.CancelledError from None
        raise
    finally:
        if not entered:
            client._client._sock_close()  # aiomqtt offers no public way


def refused_credentials(exc: BaseException | None) -> bool:
    """A CONNACK saying bad username or password, or not authorized (MQTT 3.1.1 or 5)."""
    if not isinstance(exc, MqttConnectError):
        return False
    code = exc.rc.value if isinstance(exc.rc, ReasonCode) else exc.rc
    return code in CREDENTIALS_REFUSED
