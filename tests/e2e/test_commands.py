"""Signed commands end to end: the cloud signs and queues, its ingest worker publishes on
`down/cmd`, a real gateway (run_gateway) checks and runs them, and the results it reports on
`up/ack` land in the cloud's database. Bad commands are published by hand, as an attacker or
a broken relay would, and each is refused with its reason and recorded.

The gateway's wall clock is the test's (expiry without sleeping).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from cloud.models import Quarantine
from protocols.mqtt import commands as cmd
from protocols.mqtt import messages as msg
from protocols.mqtt.topics import Kind, topic
from tests.conftest import mqtt_protocol
from tests.e2e.command_harness import KEY, Clock, Cloud, gateway, private_link
from tests.e2e.link_harness import Link, as_async, wait_until

pytestmark = pytest.mark.timeout(90)


def altered(payload: str, change: Callable[[dict[str, Any]], None]) -> bytes:
    raw = json.loads(payload)
    change(raw)
    return json.dumps(raw).encode()


async def test_signed_commands_run_and_bad_ones_are_refused_and_recorded(link: Link) -> None:
    clock = Clock()
    async with link.ingest(commands=True) as worker:
        cloud = Cloud(link, worker, clock)
        async with gateway(link, clock):
            ping = cloud.issue()
            assert await cloud.settled(ping) == [("done", None)]
            done = cloud.command(ping)
            assert (done.state, done.reason) == ("done", None)
            assert done.result["version"]
            assert set(done.result["outbox"]) >= {"pending", "acked_seq", "dropped"}
            assert done.sent_at is not None
            assert done.finished_at is not None

            unsigned = cloud.issue(queue=False)
            payload = cloud.command(unsigned).payload
            await cloud.publish(Kind.CMD, altered(payload, lambda r: r.pop("signature")))

            tampered = cloud.issue(queue=False)
            payload = cloud.command(tampered).payload
            await cloud.publish(Kind.CMD, altered(payload, lambda r: r["args"].update(x=1)))

            expired = cloud.issue(ttl_s=10)
            clock.t += timedelta(seconds=10 + 60 + 1)  # past expiry and the gateway's skew

            await cloud.publish(Kind.CMD, cloud.command(ping).payload.encode())  # a replay

            expected = {
                unsigned: ("rejected", "unsigned"),
                tampered: ("rejected", "bad_signature"),
                expired: ("rejected", "expired"),
            }
            for command_id, outcome in expected.items():
                assert await cloud.settled(command_id) == [outcome]
                row = cloud.command(command_id)
                assert (row.state, row.reason) == outcome
            # the replay's refusal is recorded; the command it repeated stays done
            assert await cloud.settled(ping, 2) == [("done", None), ("rejected", "replayed")]
            assert cloud.command(ping).state == "done"

        async with gateway(link, clock):  # a restart: still a replay (and not yet expired)
            await cloud.publish(Kind.CMD, cloud.command(ping).payload.encode())
            assert (await cloud.settled(ping, 3))[2] == ("rejected", "replayed")

        # a result for a command the cloud never sent is quarantined
        stranger = cmd.CommandResult(
            gateway_id=link.gateway_id, command_id=uuid.uuid4(), status="done", ts=clock.t
        )
        await cloud.publish(Kind.UP_ACK, msg.encode(stranger))

        def quarantined() -> list[str]:
            with link.sessions() as session:
                query = select(Quarantine.reason).where(
                    Quarantine.topic == topic(link.gateway_id, Kind.UP_ACK)
                )
                return list(session.scalars(query))

        await wait_until(as_async(quarantined), 10, "the stray result in quarantine")
        assert quarantined() == ["unknown_command"]
        assert worker.metrics.commands_sent == 2  # ping and the expiring one
        # The worker's counters are checked on a broker of their own (below): on a shared
        # Mosquitto it also hears the up/ack of other runs' gateways.


async def test_cli_sends_a_command_and_waits_for_its_result(link: Link, tmp_path: Path) -> None:
    """`anju cloud gateway command` in a real subprocess; the gateway and the ingest worker
    that records the result run here."""
    key_file = tmp_path / "command-key.pem"
    key_file.write_bytes(
        KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    env = {
        **os.environ,
        "ANJU_ENV": "development",
        "ANJU_DATA_DIR": str(tmp_path / "data"),
        "ANJU_DATABASE_URL": link.database_url,
        "ANJU_MQTT_URL": link.mqtt_url,
        "ANJU_MQTT_PROTOCOL": mqtt_protocol(link.mqtt_url),
        "ANJU_COMMAND_KEY_FILE": str(key_file),
    }
    clock = Clock()
    async with link.ingest(), gateway(link, clock):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "anju", "cloud", "gateway", "command", link.gateway_id,
            "ping", "--ttl", "60", "--wait", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0].startswith("command ")
    answer = json.loads(lines[-1])
    assert (answer["state"], answer["reason"]) == ("done", None)
    assert answer["result"]["outbox"]["pending"] == 0


async def test_refusals_and_stray_results_are_counted(tmp_path: Path) -> None:
    clock = Clock()
    async with (
        private_link(tmp_path) as link,
        link.ingest(commands=True) as worker,
        gateway(link, clock),
    ):
        cloud = Cloud(link, worker, clock)
        ping = cloud.issue()
        await cloud.settled(ping)
        unsigned = cloud.issue(queue=False)
        payload = cloud.command(unsigned).payload
        await cloud.publish(Kind.CMD, altered(payload, lambda r: r.pop("signature")))
        await cloud.publish(Kind.CMD, cloud.command(ping).payload.encode())
        await cloud.settled(unsigned)
        await cloud.settled(ping, 2)
        stray = cmd.CommandResult(
            gateway_id=link.gateway_id, command_id=uuid.uuid4(), status="done", ts=clock.t
        )
        await cloud.publish(Kind.UP_ACK, msg.encode(stray))
        # A batch is counted after its commit: wait for the count, not for the row.
        await wait_until(
            as_async(lambda: worker.metrics.rejected["unknown_command"]), 10, "the count"
        )
    assert worker.metrics.rejected["unknown_command"] == 1
    assert worker.metrics.commands_refused == {"unsigned": 1, "replayed": 1}
    assert worker.metrics.command_results == 3  # done, unsigned, replayed (not the stray)
    assert worker.metrics.commands_sent == 1
    (refused,) = [
        f for f in text_string_to_metric_families(worker.metrics.render())
        if f.name == "anju_ingest_commands_refused"
    ]  # fmt: skip
    assert {s.labels["reason"]: s.value for s in refused.samples} == {"unsigned": 1, "replayed": 1}
