"""MQTT uplink: publishes the outbox, deletes rows only on the cloud's `down/ack`.

Reconnection belongs here, not in the client: `async with` the client, and on `MqttError` back
off (capped, jittered) and connect again, resending everything not yet acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from datetime import datetime

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.backoff import Backoff
from edge.config import GatewayConfig
from edge.link.outbox import Outbox
from protocols.mqtt import messages as msg
from protocols.mqtt.topics import Kind, topic

log = logging.getLogger(__name__)

# Resend when the cloud has not acknowledged within this long: it may have been down or
# the broker may have dropped the message; the cloud stores idempotently, so resending is safe.
ACK_TIMEOUT_S = 10.0
BATCH_READINGS = 500


class Uplink:
    def __init__(self, config: GatewayConfig, outbox: Outbox, now: Callable[[], datetime]) -> None:
        self._config = config
        self._outbox = outbox
        self._now = now
        self._wake = asyncio.Event()
        self._sent_upto = 0
        self.stored_seq = 0
        self.connected = False

    def notify(self) -> None:
        """New rows are in the outbox."""
        self._wake.set()

    def _client(self) -> aiomqtt.Client:
        mqtt = self._config.mqtt
        gid = self._config.gateway_id
        v5 = mqtt.protocol == "5"
        offline = b'{"online": false}'
        kwargs: dict[str, object] = {}
        if v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 3600
            kwargs["properties"] = props
            kwargs["clean_start"] = False
        else:
            kwargs["clean_session"] = False
        address = mqtt.address
        return aiomqtt.Client(
            hostname=address.host,
            port=address.port,
            username=mqtt.username or address.username,
            password=mqtt.password or address.password,
            identifier=f"anju-gw-{gid}",
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            keepalive=mqtt.keepalive_s,
            will=aiomqtt.Will(topic(gid, Kind.STATE), offline, qos=1, retain=True),
            tls_context=ssl.create_default_context() if address.tls else None,
            **kwargs,  # type: ignore[arg-type]
        )

    async def run(self) -> None:
        backoff = Backoff()
        gid = self._config.gateway_id
        while True:
            failed: Exception | None = None
            try:
                async with self._client() as client:
                    backoff.reset()
                    self.connected = True
                    log.info("[%s] uplink connected to %s", gid, self._config.mqtt.url)
                    await client.subscribe(topic(gid, Kind.ACK), qos=1)
                    await client.publish(
                        topic(gid, Kind.STATE), b'{"online": true}', qos=1, retain=True
                    )
                    self._sent_upto = self.stored_seq
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._receive(client), name=f"uplink-recv-{gid}")
                        tg.create_task(self._send(client), name=f"uplink-send-{gid}")
            except* aiomqtt.MqttError as group:
                failed = group.exceptions[0]
            self.connected = False
            delay = backoff.next_delay()
            if backoff.failures == 1:
                log.warning("[%s] uplink down (%s); retrying", gid, failed)
            await asyncio.sleep(delay)

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                continue
            try:
                ack = msg.decode(msg.Ack, bytes(payload))
            except msg.MessageError as exc:
                log.warning("[%s] ignoring bad ack: %s", self._config.gateway_id, exc)
                continue
            if ack.stored_seq > self.stored_seq:
                self.stored_seq = ack.stored_seq
                await asyncio.to_thread(self._outbox.acknowledge, ack.stored_seq)

    async def _send(self, client: aiomqtt.Client) -> None:
        gid = self._config.gateway_id
        while True:
            self._wake.clear()
            rows = self._outbox.pending(after=self._sent_upto, limit=BATCH_READINGS)
            if rows:
                readings = [msg.Reading(seq=r.seq, **r.payload) for r in rows]
                body = msg.Telemetry(
                    gateway_id=gid,
                    seq=rows[-1].seq,
                    ts=self._now(),
                    base_seq=self._outbox.base_seq(),
                    readings=readings,
                )
                await client.publish(topic(gid, Kind.TELEMETRY), msg.encode(body), qos=1)
                self._sent_upto = rows[-1].seq
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), ACK_TIMEOUT_S)
            except TimeoutError:
                if self._sent_upto > self.stored_seq:
                    log.info("[%s] no ack past %d; resending", gid, self.stored_seq)
                    self._sent_upto = self.stored_seq
