"""A cloud, a gateway and their signing key for command tests and `bench commands`: the cloud
issues through its service and reads its tables, the gateway is `run_gateway` on the link."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from anju.broker import embedded_broker
from cloud import migrate
from cloud.commands import service
from cloud.db import as_utc
from cloud.ingest.worker import IngestWorker
from cloud.models import CommandResultRow, GatewayCommand
from edge.config import CommandSettings
from edge.gateway import run_gateway
from protocols.mqtt import commands as cmd
from protocols.mqtt.topics import Kind, topic
from tests.conftest import free_port
from tests.e2e.link_harness import Link, as_async, mqtt_client, stop, wait_until

KEY = Ed25519PrivateKey.generate()


class Clock:
    def __init__(self) -> None:
        self.t = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.t


@contextlib.asynccontextmanager
async def gateway(link: Link, clock: Clock, **changes: Any) -> AsyncIterator[None]:
    """A gateway run (its config the link's with `changes`), yielded once it has reported its
    state after connecting (so its `down/cmd` subscription is in place: the uplink subscribes
    before it reports)."""
    clock.t += timedelta(seconds=1)  # this run's state report is newer than any before
    started = clock.t
    commands = CommandSettings(public_key=cmd.public_key_text(KEY.public_key()))
    config = link.config.model_copy(update={"commands": commands, **changes})
    task = asyncio.create_task(run_gateway(config, now=clock), name="gateway")

    def reported() -> bool:
        state_ts = link.gateway().state_ts
        return state_ts is not None and as_utc(state_ts) >= started

    try:
        await wait_until(as_async(reported), 20, "the gateway's state report")
        yield
    finally:
        await stop(task)


class Cloud:
    def __init__(self, link: Link, worker: IngestWorker, clock: Clock) -> None:
        self.link = link
        self.worker = worker
        self.clock = clock

    def issue(self, name: str = "ping", *, ttl_s: int = 300, queue: bool = True) -> str:
        """A signed command; queued for the dispatcher, or marked sent (the test sends it)."""
        with self.link.sessions.begin() as session:
            row = service.issue(
                session, KEY, self.link.gateway_id, name, {}, issued_by="test",
                now=self.clock.t, ttl=timedelta(seconds=ttl_s),
            )  # fmt: skip
            if not queue:
                row.state = "sent"
        assert self.link.dispatcher is not None, "start ingest with commands=True"
        self.link.dispatcher.queued.set()
        return row.id

    def command(self, command_id: str) -> GatewayCommand:
        with self.link.sessions() as session:
            row: GatewayCommand = session.get_one(GatewayCommand, command_id)
            return row

    def results(self, command_id: str) -> list[tuple[str, str | None]]:
        with self.link.sessions() as session:
            rows = session.scalars(
                select(CommandResultRow)
                .where(CommandResultRow.command_id == command_id)
                .order_by(CommandResultRow.id)
            )
            return [(r.status, r.reason) for r in rows]

    async def settled(self, command_id: str, n: int = 1) -> list[tuple[str, str | None]]:
        def enough() -> bool:
            return len(self.results(command_id)) >= n

        await wait_until(as_async(enough), 15, f"{n} result(s) of command {command_id}")
        return self.results(command_id)

    async def publish(self, kind: Kind, payload: bytes) -> None:
        async with mqtt_client(self.link.mqtt_url, f"raw-{uuid.uuid4().hex[:8]}") as client:
            await client.publish(topic(self.link.gateway_id, kind), payload, qos=1)


@contextlib.asynccontextmanager
async def private_link(tmp_path: Path) -> AsyncIterator[Link]:
    """A link on an embedded broker of its own and SQLite: nobody else's traffic."""
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'cloud.db'}"
    migrate.upgrade(database_url)
    async with embedded_broker("127.0.0.1", port):
        link = Link(f"mqtt://127.0.0.1:{port}", database_url, tmp_path)
        try:
            yield link
        finally:
            link.close()
