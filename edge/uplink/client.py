"""MQTT uplink: publishes the outbox, deletes rows only on the cloud's `down/ack`.

Reconnection belongs here, not in the client: `async with` the client, and on `MqttError` back
off (capped, jittered) and connect again, resending everything not yet acknowledged. The
broker's PUBACK only means the broker has it; the row stays until the cloud says it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import GatewayConfig, UplinkSettings
from edge.health import HealthProbe
from edge.store.outbox import Outbox, OutboxRow
from edge.uplink.commands import CommandChannel
from protocols.mqtt import messages as msg
from protocols.mqtt.topics import Kind, topic
from runtime.backoff import Backoff
from runtime.mqtt_client import connection, mqtt_client, refused_credentials
from runtime.tasks import first_of, until_one_fails

log = logging.getLogger(__name__)

# With nothing in flight and no notify, look at the outbox this often anyway: a producer in
# another process (or one that forgot to notify) is still picked up.
IDLE_POLL_S = 1.0
RESENDS_BEFORE_RECONNECT = 1
# A clean stop says "offline" itself (a clean DISCONNECT discards the Will); a broker that does
# not take it this fast is not waited for: the stop goes on.
OFFLINE_PUBLISH_S = 2.0
BATCH_TOPIC = {msg.RecordKind.READING: Kind.TELEMETRY, msg.RecordKind.EVENT: Kind.EVENTS}
# A state report asked for out of turn (an access list applied) waits at least this long after
# the one before: a flood of lists costs the broker one retained state a second, not one each.
STATE_GAP_S = 1.0


class AccessInbox(Protocol):
    """Where `down/access` payloads go (edge.access.service.AccessService)."""

    @property
    def version(self) -> int | None: ...

    def deliver(self, payload: bytes) -> None: ...


class ConfigInbox(Protocol):
    """Where `down/config` payloads go (edge.remote_config.RemoteConfig)."""

    version: int | None
    error: str | None

    async def receive(self, payload: bytes) -> bool: ...


class Uplink:
    def __init__(
        self,
        config: GatewayConfig,
        outbox: Outbox,
        now: Callable[[], datetime],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        commands: CommandChannel | None = None,
        access: AccessInbox | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._config = config
        self._link = config.link
        self._outbox = outbox
        self._now = now
        self._monotonic = monotonic
        self._sleep = sleep  # tests drive days of reconnect backoff without waiting for them
        self._commands = commands  # `down/cmd` in, `up/ack` out, for the command handler
        self._access = access  # `down/access` in, for the access service
        self._backoff = backoff or Backoff()
        self.health: HealthProbe | None = None  # `up/health` samples, when given a probe
        self.remote_config: ConfigInbox | None = None  # `down/config` in, when given one
        self._refused = False  # the broker refused our credentials (logged once, until accepted)
        self._wake = asyncio.Event()
        self._state_due = asyncio.Event()  # a state report wanted before its interval
        self._state_sent = 0.0  # monotonic time of the last state report
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sent_upto = 0
        self._sending_epoch: int | None = None  # the epoch of the rows in flight
        self._epoch_start = 0  # and where it began
        self._last_progress = 0.0
        self.acked_seq = 0
        self.connected = asyncio.Event()
        self.resends = 0
        self._timeouts = 0

    def set_link(self, link: UplinkSettings) -> None:
        """New limits (remote configuration): the next batch and state report use them."""
        self._link = link
        self._wake.set()

    def notify(self) -> None:
        """New rows are in the outbox (the pollers' `on_stored` hook)."""
        self._wake.set()

    def report_state(self) -> None:
        """Publish `up/state` soon, not at the next interval: what it reports changed (an
        access list applied). Safe from a worker thread; at most one per `STATE_GAP_S`."""
        loop = self._loop
        if loop is None:
            self._state_due.set()  # before run(): the first state report carries it anyway
        else:
            loop.call_soon_threadsafe(self._state_due.set)

    async def _state(self, *, online: bool) -> msg.State:
        stats = await asyncio.to_thread(self._outbox.stats)
        return msg.State(
            gateway_id=self._config.gateway_id,
            epoch=self._outbox.epoch,
            epoch_start=self._outbox.epoch_start,
            seq=stats.last_seq,
            ts=self._now(),
            online=online,
            pending=stats.pending,
            dropped=stats.dropped,
            dropped_upto=stats.dropped_upto,
            acked_seq=stats.acked_seq,
            access_version=None if self._access is None else self._access.version,
            config_version=None if self.remote_config is None else self.remote_config.version,
            config_error=None if self.remote_config is None else self.remote_config.error,
        )

    async def run(self) -> None:
        backoff = self._backoff
        gid = self._config.gateway_id
        self._loop = asyncio.get_running_loop()
        self.acked_seq = (await asyncio.to_thread(self._outbox.stats)).acked_seq
        while True:
            failed: BaseException | None = None
            client = gateway_mqtt_client(self._config, await self._state(online=False))
            try:
                async with connection(client):
                    await self._session(client, backoff)
            except* aiomqtt.MqttError as group:
                failed = group.exceptions[0]
            self.connected.clear()
            refused = refused_credentials(failed)
            if refused and not self._refused:
                # Retrying soon cannot help: someone must fix the password or the registry.
                log.error(
                    "[%s] broker refused credentials for gateway %s (%s); check mqtt.username"
                    " and mqtt.password against `anju cloud gateway add`; retrying now and then",
                    gid,
                    gid,
                    failed,
                )
            elif backoff.failures == 0 and not refused:
                log.warning("[%s] uplink down (%s); retrying", gid, failed)
            self._refused = refused
            await self._sleep(backoff.next_delay(to_cap=refused))

    async def _session(self, client: aiomqtt.Client, backoff: Backoff) -> None:
        gid = self._config.gateway_id
        await client.subscribe(topic(gid, Kind.DOWN_ACK), qos=1)
        if self._commands is not None:
            await client.subscribe(topic(gid, Kind.CMD), qos=1)
        if self._access is not None:
            await client.subscribe(topic(gid, Kind.ACCESS), qos=1)
        if self.remote_config is not None:
            await client.subscribe(topic(gid, Kind.CONFIG), qos=1)
        await self._publish_state(client)
        if backoff.failures:
            log.info("[%s] uplink reconnected", gid)
        self._refused = False
        backoff.reset()
        self.connected.set()
        self._sent_upto = self.acked_seq
        parts = {
            f"uplink-recv-{gid}": self._receive(client),
            f"uplink-send-{gid}": self._send(client),
            f"uplink-state-{gid}": self._report(client),
        }
        if self._commands is not None:
            parts[f"uplink-cmd-ack-{gid}"] = self._publish_results(client, self._commands)
        if self.health is not None:
            parts[f"uplink-health-{gid}"] = self._report_health(client, self.health)
        try:
            await until_one_fails(parts)
        except asyncio.CancelledError:
            await self._say_offline(client)
            raise

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        """The retained state as offline, on a stop: the Will covers only an unclean end."""
        gid = self._config.gateway_id
        try:
            async with asyncio.timeout(OFFLINE_PUBLISH_S):
                await self._publish_state(client, online=False)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.warning("[%s] could not publish the offline state on stop (%s)", gid, exc)

    async def _publish_state(self, client: aiomqtt.Client, *, online: bool = True) -> None:
        self._state_due.clear()  # what is reported now includes what asked for it
        self._state_sent = self._monotonic()
        state = await self._state(online=online)
        await client.publish(
            topic(self._config.gateway_id, Kind.STATE), msg.encode(state), qos=1, retain=True
        )

    async def _report(self, client: aiomqtt.Client) -> None:
        """Every `state_interval_s`, and soon after `report_state()` (spaced by `STATE_GAP_S`)."""
        while True:
            await first_of(self._sleep(self._link.state_interval_s), self._state_due.wait())
            if self._state_due.is_set():
                gap = STATE_GAP_S - (self._monotonic() - self._state_sent)
                if gap > 0:
                    await self._sleep(gap)
            await self._publish_state(client)

    async def _report_health(self, client: aiomqtt.Client, probe: HealthProbe) -> None:
        """A sample at once on connecting, then one per interval."""
        name = topic(self._config.gateway_id, Kind.HEALTH)
        while True:
            stats = await asyncio.to_thread(self._outbox.stats)
            sample = await asyncio.to_thread(probe.sample, stats, self._outbox.epoch, self._now())
            await client.publish(name, msg.encode(sample), qos=1)
            await self._sleep(self._link.health_interval_s)

    async def _publish_results(self, client: aiomqtt.Client, commands: CommandChannel) -> None:
        """Command results, oldest first; one stays queued until the broker has taken it."""
        name = topic(self._config.gateway_id, Kind.UP_ACK)
        while True:
            payload = await commands.next_result()
            await client.publish(name, payload, qos=1)
            commands.published()

    async def _receive(self, client: aiomqtt.Client) -> None:
        gid = self._config.gateway_id
        command_topic, ack_topic = topic(gid, Kind.CMD), topic(gid, Kind.DOWN_ACK)
        access_topic, config_topic = topic(gid, Kind.ACCESS), topic(gid, Kind.CONFIG)
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                continue
            if self._commands is not None and message.topic.value == command_topic:
                self._commands.deliver(bytes(payload))
                continue
            if self._access is not None and message.topic.value == access_topic:
                self._access.deliver(bytes(payload))
                continue
            if self.remote_config is not None and message.topic.value == config_topic:
                before = (self.remote_config.version, self.remote_config.error)
                await self.remote_config.receive(bytes(payload))
                if (self.remote_config.version, self.remote_config.error) != before:
                    await self._publish_state(client)  # the cloud learns the outcome now
                continue
            if message.topic.value != ack_topic:
                # Not ours to read: amqtt 0.12 hands a resumed session retained messages it
                # never subscribed to (its own up/state).
                log.debug("[%s] ignoring a message on %s", gid, message.topic.value)
                continue
            try:
                ack = msg.decode(msg.Ack, bytes(payload))
            except msg.MessageError as exc:
                log.warning("[%s] ignoring bad ack: %s", gid, exc)
                continue
            if ack.gateway_id != gid or ack.stored_seq <= self.acked_seq:
                continue
            # By epoch: an ack for a store this one replaced (the broker kept it in our session)
            # names seqs that are not ours, and deletes nothing.
            acked = await asyncio.to_thread(self._outbox.acknowledge, ack.epoch, ack.stored_seq)
            if acked <= self.acked_seq:
                continue
            self.acked_seq = acked
            self._timeouts = 0
            self._last_progress = self._monotonic()
            self._wake.set()

    async def _send(self, client: aiomqtt.Client) -> None:
        gid = self._config.gateway_id
        max_bytes = self._link.batch_kb * 1024 - msg.ENVELOPE_RESERVE_BYTES
        while True:
            self._wake.clear()
            self._sent_upto = max(self._sent_upto, self.acked_seq)
            in_flight = self._sent_upto - self.acked_seq
            if in_flight < self._link.window_records:
                rows = await asyncio.to_thread(
                    self._outbox.batch,
                    after=self._sent_upto,
                    max_records=self._link.batch_records,
                    max_bytes=max_bytes,
                )
                # An epoch's records go out once the one before is all stored, so the cloud
                # meets the epochs in the order they began (the newest is the gateway's current).
                if rows and (in_flight == 0 or rows[0].epoch == self._sending_epoch):
                    await self._publish_batch(client, rows)
                    continue
            if in_flight == 0:
                timeout = IDLE_POLL_S
            else:
                waited = self._monotonic() - self._last_progress
                if waited >= self._link.ack_timeout_s:
                    self._timeouts += 1
                    if self._timeouts > RESENDS_BEFORE_RECONNECT:
                        # A half-open connection (the broker restarted, a NAT forgot us) looks
                        # alive until keepalive notices; silence after resends is enough.
                        self._timeouts = 0
                        raise aiomqtt.MqttError(f"no ack past {self.acked_seq}; reconnecting")
                    log.info(
                        "[%s] no ack past %d in %.0f s; resending", gid, self.acked_seq, waited
                    )
                    self.resends += 1
                    self._sent_upto = self.acked_seq
                    self._last_progress = self._monotonic()
                    continue
                timeout = min(IDLE_POLL_S, self._link.ack_timeout_s - waited)
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _publish_batch(self, client: aiomqtt.Client, rows: list[OutboxRow]) -> None:
        gid = self._config.gateway_id
        kind = rows[0].kind
        epoch = rows[0].epoch
        if epoch != self._sending_epoch:
            self._epoch_start = await asyncio.to_thread(self._outbox.start_of, epoch)
            self._sending_epoch = epoch
        after = self._sent_upto
        if self._sent_upto == self.acked_seq:
            # Nothing in flight: every record of this epoch before these has left the outbox,
            # stored or dropped by the budget. Declaring the span from the epoch's start covers
            # the dropped ones, which the cloud would otherwise wait for forever.
            after = self._epoch_start
            self._last_progress = self._monotonic()  # the ack timer starts with the first send
        payload = msg.encode_batch(
            kind,
            gateway_id=gid,
            after=after,
            ts=self._now(),
            records=[(r.seq, r.body) for r in rows],
            epoch=epoch,
            epoch_start=self._epoch_start,
        )
        await client.publish(topic(gid, BATCH_TOPIC[kind]), payload, qos=1)
        self._sent_upto = rows[-1].seq


def gateway_mqtt_client(config: GatewayConfig, will: msg.State) -> aiomqtt.Client:
    """The gateway's client: a persistent session, and a Will that marks it offline. Its
    client id is its login, the one id a broker that binds ids to logins lets it use."""
    mqtt = config.mqtt
    gid = config.gateway_id
    v5 = mqtt.protocol == "5"
    session: dict[str, Any] = {"clean_session": False}
    if v5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = config.link.session_expiry_s
        session = {"properties": props, "clean_start": False}
    return mqtt_client(
        mqtt.address,
        identifier=mqtt.username or mqtt.address.username or gid,
        username=mqtt.username,
        password=mqtt.password,
        v5=v5,
        keepalive=mqtt.keepalive_s,
        ca_file=mqtt.ca_file,
        will=aiomqtt.Will(topic(gid, Kind.STATE), msg.encode(will), qos=1, retain=True),
        **session,
    )
