"""Signed commands at the gateway: a real gateway on a real broker, a test client as the cloud.

The gateway's wall clock is driven by the test (expiry), its store is a real SQLite file
(replays are refused after a restart too), and the door lock is the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.actions import builtin_actions
from edge.config import GatewayConfig, load_config
from edge.door.lock import SimulatedLock
from edge.gateway import run_gateway
from edge.store.outbox import Outbox
from edge.store.replay import ReplayMemory
from edge.store.results import ResultStore
from edge.uplink.commands import CommandChannel, CommandHandler, command_key
from protocols.errors import ConfigError
from protocols.mqtt import commands as cmd
from protocols.mqtt import messages as msg
from protocols.mqtt.topics import Kind, topic
from tests.conftest import mqtt_protocol
from tests.e2e.link_harness import Relay, forget_gateway, mqtt_client, stop, wait_until

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CLOUD = Ed25519PrivateKey.generate()
STRANGER = Ed25519PrivateKey.generate()
SKEW = timedelta(seconds=60)


class Clock:
    def __init__(self, t: datetime = T0) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def new_command(
    gateway_id: str, name: str = "ping", ttl_s: float = 300, **args: Any
) -> cmd.Command:
    return cmd.Command(
        gateway_id=gateway_id,
        id=uuid.uuid4(),
        name=name,
        args=args,
        issued_at=T0,
        expires_at=T0 + timedelta(seconds=ttl_s),
    )


@dataclass
class FakeCloud:
    """Publishes on `down/cmd` and collects `up/ack` results by command id."""

    client: aiomqtt.Client
    gateway_id: str
    results: dict[uuid.UUID | None, list[cmd.CommandResult]] = field(default_factory=dict)
    arrived: list[uuid.UUID | None] = field(default_factory=list)  # command ids, in order

    async def read(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            result = msg.decode(cmd.CommandResult, message.payload)
            self.results.setdefault(result.command_id, []).append(result)
            self.arrived.append(result.command_id)

    async def send(self, payload: bytes | cmd.Command) -> None:
        raw = payload if isinstance(payload, bytes) else msg.encode(payload)
        await self.client.publish(topic(self.gateway_id, Kind.CMD), raw, qos=1)

    async def result(self, command_id: uuid.UUID | None, n: int = 1) -> cmd.CommandResult:
        """The `n`th result for a command id (waiting for it)."""
        async with asyncio.timeout(10):
            while len(self.results.get(command_id, [])) < n:  # noqa: ASYNC110 - filled by read()
                await asyncio.sleep(0.02)
        return self.results[command_id][n - 1]

    async def until_answered(self) -> None:
        """Ping until the gateway answers: its `down/cmd` subscription is then in place."""
        async with asyncio.timeout(20):
            while True:
                ping = cmd.sign(new_command(self.gateway_id), CLOUD)
                await self.send(ping)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        while ping.id not in self.results:  # noqa: ASYNC110
                            await asyncio.sleep(0.02)
                        return


@contextlib.asynccontextmanager
async def fake_cloud(url: str, gateway_id: str) -> AsyncIterator[FakeCloud]:
    async with mqtt_client(url, f"cloud-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(topic(gateway_id, Kind.UP_ACK), qos=1)
        cloud = FakeCloud(client, gateway_id)
        reader = asyncio.create_task(cloud.read(), name="fake-cloud")
        try:
            yield cloud
        finally:
            await stop(reader)


def gateway_config(url: str, tmp_path: Path, *, key: bool = True) -> GatewayConfig:
    gid = f"gw-{uuid.uuid4().hex[:8]}"
    commands = {"public_key": cmd.public_key_text(CLOUD.public_key())} if key else {}
    return GatewayConfig.model_validate(
        {
            "gateway_id": gid,
            "mqtt": {"url": url, "protocol": mqtt_protocol(url), "keepalive_s": 5},
            "store": {"path": str(tmp_path / f"{gid}.db")},
            "link": {"state_interval_s": 0.5},
            "commands": commands,
        }
    )


@contextlib.asynccontextmanager
async def gateway(config: GatewayConfig, clock: Clock) -> AsyncIterator[None]:
    task = asyncio.create_task(run_gateway(config, now=clock), name="gateway")
    try:
        yield
    finally:
        await stop(task)
        await forget_gateway(config.mqtt.url, config.gateway_id)  # its retained state, session


async def test_gateway_runs_signed_commands_and_refuses_the_rest(
    mqtt_url: str, tmp_path: Path
) -> None:
    config = gateway_config(mqtt_url, tmp_path)
    gid = config.gateway_id
    clock = Clock()
    async with fake_cloud(mqtt_url, gid) as cloud:
        async with gateway(config, clock):
            await cloud.until_answered()
            ping = cmd.sign(new_command(gid), CLOUD)
            await cloud.send(ping)
            done = await cloud.result(ping.id)
            assert (done.status, done.reason, done.gateway_id) == ("done", None, gid)
            assert done.data["version"]
            assert done.data["outbox"]["pending"] == 0
            assert done.data["uptime_s"] >= 0

            refusals: dict[cmd.Reason, uuid.UUID] = {}
            unsigned = new_command(gid)
            await cloud.send(unsigned)
            refusals[cmd.Reason.UNSIGNED] = unsigned.id

            tampered = json.loads(msg.encode(cmd.sign(new_command(gid), CLOUD)))
            tampered["name"] = "door.unlock"
            await cloud.send(json.dumps(tampered).encode())
            refusals[cmd.Reason.BAD_SIGNATURE] = uuid.UUID(tampered["id"])

            stranger = cmd.sign(new_command(gid), STRANGER)
            await cloud.send(stranger)
            stranger_id = stranger.id

            elsewhere = cmd.sign(new_command("gw-other"), CLOUD)
            await cloud.send(elsewhere)
            refusals[cmd.Reason.WRONG_GATEWAY] = elsewhere.id

            unknown = cmd.sign(new_command(gid, "reboot"), CLOUD)
            await cloud.send(unknown)
            refusals[cmd.Reason.UNKNOWN_COMMAND] = unknown.id

            await cloud.send(msg.encode(ping))  # the same signed bytes again
            refusals[cmd.Reason.REPLAYED] = ping.id

            malformed_id = uuid.uuid4()
            await cloud.send(json.dumps({"id": str(malformed_id), "name": 7}).encode())
            refusals[cmd.Reason.MALFORMED] = malformed_id

            for reason, command_id in refusals.items():
                n = 2 if reason is cmd.Reason.REPLAYED else 1
                got = await cloud.result(command_id, n)
                assert (got.status, got.reason) == ("rejected", reason), got
            assert (await cloud.result(stranger_id)).reason is cmd.Reason.BAD_SIGNATURE

            short = cmd.sign(new_command(gid, ttl_s=10), CLOUD)
            clock.t = short.expires_at + SKEW + timedelta(seconds=1)
            await cloud.send(short)
            expired = await cloud.result(short.id)
            assert (expired.status, expired.reason) == ("rejected", "expired")
            clock.t = T0

        # a restart: the store remembers what ran, so the replay is still refused
        async with gateway(config, clock):
            await cloud.until_answered()
            await cloud.send(msg.encode(ping))
            again = await cloud.result(ping.id, 3)
            assert (again.status, again.reason) == ("rejected", "replayed")


async def test_results_the_uplink_could_not_publish_are_published_after_a_restart(
    mqtt_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The gateway gets two commands and runs them, but what it sends is lost on the way
    (the broker never acknowledges the results); it is stopped. Restarted on the same store,
    it publishes both results first, oldest first, as they were produced (their time is the
    first run's), and once."""
    caplog.set_level(logging.INFO, logger="edge.uplink.commands")
    relay = Relay(int(mqtt_url.rsplit(":", 1)[1]))
    await relay.up()
    try:
        config = gateway_config(relay.url, tmp_path)
        gid = config.gateway_id
        clock = Clock()
        async with fake_cloud(mqtt_url, gid) as cloud:
            first_run = asyncio.create_task(run_gateway(config, now=clock), name="gateway")
            try:
                await cloud.until_answered()
                relay.lose_sent = True
                clock.t = T0 + timedelta(seconds=7)
                ping, unsigned = cmd.sign(new_command(gid), CLOUD), new_command(gid)
                await cloud.send(ping)
                await cloud.send(unsigned)

                async def both_ran() -> bool:
                    said = [r.getMessage() for r in caplog.records]
                    return any(f"({ping.id}) done" in m for m in said) and any(
                        f"{unsigned.id} refused" in m for m in said
                    )

                await wait_until(both_ran, 10, "both commands to run")
                await relay.down()  # and the gateway cannot reconnect until it is stopped

                async def link_lost() -> bool:
                    return any("uplink down" in m for m in caplog.messages)

                # Stopped once its session has ended: a cancel during the session's teardown
                # after an MqttError is lost (Uplink.run, a separate issue).
                await wait_until(link_lost, 20, "the gateway to see the link drop")
            finally:
                await stop(first_run)
            assert ping.id not in cloud.results
            assert unsigned.id not in cloud.results
            seen = len(cloud.arrived)

            await relay.up()
            relay.lose_sent = False
            clock.t = T0 + timedelta(seconds=60)
            async with gateway(config, clock):
                done = await cloud.result(ping.id)
                await cloud.until_answered()  # a ping after them: a second copy came before
            assert cloud.arrived[seen : seen + 2] == [ping.id, unsigned.id]
            ran = T0 + timedelta(seconds=7)
            done, *again = cloud.results[ping.id]
            assert (done.status, done.ts, done.gateway_id) == ("done", ran, gid)
            assert done.data["outbox"]["pending"] == 0
            refused, *later = cloud.results[unsigned.id]
            assert (refused.status, refused.reason, refused.ts) == ("rejected", "unsigned", ran)
            # A broker that kept the commands in the session (their PUBACKs were lost too)
            # sends them again: judged again now, and the ping is not run twice.
            assert {(r.status, r.reason, r.ts) for r in again} <= {
                ("rejected", "replayed", clock.t)
            }
            assert {(r.reason, r.ts) for r in later} <= {("unsigned", clock.t)}
    finally:
        await relay.close()


async def test_gateway_without_a_key_refuses_everything_and_says_so_at_start(
    mqtt_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = gateway_config(mqtt_url, tmp_path, key=False)
    gid = config.gateway_id
    caplog.set_level(logging.INFO)
    async with fake_cloud(mqtt_url, gid) as cloud, gateway(config, Clock()):
        signed = cmd.sign(new_command(gid), CLOUD)
        async with asyncio.timeout(20):
            while signed.id not in cloud.results:  # the subscription may not be in place yet
                await cloud.send(signed)
                await asyncio.sleep(0.3)
        got = await cloud.result(signed.id)
        assert (got.status, got.reason) == ("rejected", "unsigned")
        assert "no command key" in got.detail
    starts = [r for r in caplog.records if "no commands.public_key" in r.getMessage()]
    assert len(starts) == 1
    assert starts[0].levelno == logging.WARNING


@dataclass
class Handler:
    handler: CommandHandler
    lock: SimulatedLock
    clock: Clock
    memory: ReplayMemory

    async def run(self, command: cmd.Command) -> cmd.CommandResult:
        return await self.handler.handle(msg.encode(cmd.sign(command, CLOUD)))


@pytest.fixture
async def handler(tmp_path: Path) -> AsyncIterator[Handler]:
    outbox = Outbox(tmp_path / "gw.db")
    memory = ReplayMemory(tmp_path / "gw.db")
    lock = SimulatedLock("front")
    clock = Clock()
    actions = builtin_actions(outbox, {"front": lock}, now=clock)
    results = ResultStore(tmp_path / "gw.db")
    channel = CommandChannel("gw-1", results)
    handler = CommandHandler(
        "gw-1", CLOUD.public_key(), memory, channel, actions, now=clock, skew=SKEW
    )
    try:
        yield Handler(handler, lock, clock, memory)
    finally:
        outbox.close()
        memory.close()
        results.close()


async def test_door_unlock_drives_the_lock_once(handler: Handler) -> None:
    unlock = new_command("gw-1", "door.unlock", door="front", hold_s=3.0)
    done = await handler.run(unlock)
    assert (done.status, done.data) == ("done", {"door": "front", "hold_s": 3.0})
    assert [(r.door_id, r.person_id, r.hold_s, r.ts) for r in handler.lock.requests] == [
        ("front", f"command:{unlock.id}", 3.0, T0)
    ]
    replay = await handler.run(unlock)
    assert (replay.status, replay.reason) == ("rejected", "replayed")
    assert len(handler.lock.requests) == 1


async def test_door_unlock_failures_say_why(handler: Handler) -> None:
    nowhere = await handler.run(new_command("gw-1", "door.unlock", door="back"))
    assert (nowhere.status, nowhere.detail) == ("failed", "no door 'back' on this gateway")
    too_long = await handler.run(new_command("gw-1", "door.unlock", door="front", hold_s=600))
    assert too_long.status == "failed"
    assert "hold_s" in too_long.detail
    missing = await handler.run(new_command("gw-1", "door.unlock"))
    assert missing.status == "failed"
    assert "door" in missing.detail
    assert handler.lock.requests == []
    assert handler.handler.results["failed"] == 3


async def test_a_clock_that_jumps_ahead_and_back_does_not_let_a_replay_run(
    handler: Handler,
) -> None:
    """Forgetting by the gateway's clock would have let this one run twice: the clock jumps a
    year ahead (a command then runs, and the first one's id would have expired), then back."""
    first = new_command("gw-1", ttl_s=300)
    assert (await handler.run(first)).status == "done"
    handler.clock.t = T0 + timedelta(days=365)
    later = cmd.Command(**(new_command("gw-1").model_dump() | {"issued_at": handler.clock.t,
        "expires_at": handler.clock.t + timedelta(minutes=1)}))  # fmt: skip
    assert (await handler.run(later)).status == "done"
    handler.clock.t = T0
    assert (await handler.run(first)).reason == "replayed"
    assert handler.memory.remembered() == 2


def test_the_memory_keeps_the_newest_ids_and_forgets_what_expires_first(tmp_path: Path) -> None:
    memory = ReplayMemory(tmp_path / "gw.db", cap=3)
    try:
        ids = [uuid.uuid4() for _ in range(5)]
        expiry = [T0 + timedelta(minutes=m) for m in (5, 1, 9, 7, 3)]
        for command_id, until in zip(ids, expiry, strict=True):
            assert memory.claim(command_id, until)
        with sqlite3.connect(tmp_path / "gw.db") as db:
            kept = {uuid.UUID(i) for (i,) in db.execute("SELECT id FROM command_ids")}
        db.close()
        # the 1-minute one went when the fourth came, the 5-minute one when the fifth did
        # (the id just taken never goes: its command is live)
        assert kept == {ids[2], ids[3], ids[4]}
        assert not memory.claim(ids[4], T0)
    finally:
        memory.close()


async def test_a_command_is_not_run_when_the_replay_memory_fails(handler: Handler) -> None:
    handler.memory.close()  # as a store that can no longer be written
    result = await handler.run(new_command("gw-1", "door.unlock", door="front"))
    assert result.status == "failed"
    assert "replay memory" in result.detail
    assert handler.lock.requests == []


def test_config_takes_the_key_inline_or_from_a_file(tmp_path: Path) -> None:
    public = CLOUD.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "cloud.pem").write_bytes(pem)
    (tmp_path / "gw.yaml").write_text(
        "gateway_id: gw-1\ncommands:\n  public_key_file: keys/cloud.pem\n  clock_skew_s: 5\n"
    )
    config = load_config(tmp_path / "gw.yaml")
    assert config.commands.public_key_file == tmp_path / "keys" / "cloud.pem"
    key = command_key(config.commands)
    assert key is not None
    assert cmd.public_key_text(key) == cmd.public_key_text(public)

    inline = GatewayConfig.model_validate(
        {"gateway_id": "gw-1", "commands": {"public_key": cmd.public_key_text(public)}}
    )
    assert command_key(inline.commands) is not None
    assert command_key(GatewayConfig(gateway_id="gw-1").commands) is None

    with pytest.raises(ValueError, match="public_key"):
        GatewayConfig.model_validate({"gateway_id": "gw-1", "commands": {"public_key": "AAAA"}})
    (tmp_path / "keys" / "cloud.pem").write_text("garbage")
    with pytest.raises(ConfigError, match=r"cloud\.pem"):
        command_key(config.commands)
    (tmp_path / "keys" / "cloud.pem").unlink()
    with pytest.raises(ConfigError, match=r"cloud\.pem"):
        command_key(config.commands)


async def test_a_command_nested_too_deep_is_refused_as_malformed(handler: Handler) -> None:
    refused = await handler.handler.handle(b'{"id":' * 30_000 + b"1" + b"}" * 30_000)
    assert (refused.status, refused.reason) == ("rejected", "malformed")
    refused = await handler.handler.handle(b"[" * 100_000)
    assert (refused.status, refused.reason) == ("rejected", "malformed")


async def test_a_failure_reports_what_the_wire_takes(
    handler: Handler, caplog: pytest.LogCaptureFixture
) -> None:
    """An action's error message may hold anything; the result and the log carry it printable."""
    failed = handler.handler._failed(new_command("gw-1"), "boom \x00 \ud800" + "x" * 2000)
    assert failed.detail.startswith("boom \ufffd \ufffdx")
    assert msg.decode(cmd.CommandResult, msg.encode(failed)) == failed
    assert "boom \ufffd \ufffdx" in caplog.text
    caplog.text.encode("utf-8")  # a UTF-8 log file or journald takes the line
