"""The command dispatcher: publish queued commands (signed when issued) on their gateway's
`down/cmd`, over a connection of its own.

It runs beside an ingest worker, as a sibling task started by whoever starts the worker (the
API process, `anju cloud ingest`); the worker records the results that come back on `up/ack`.
Claims are atomic, so several dispatchers never publish one command twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiomqtt
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from cloud.commands import service
from cloud.config import Settings
from cloud.metrics import IngestMetrics
from cloud.mqtt import stay_connected
from protocols.mqtt.topics import Kind, topic
from runtime.clock import utc_now
from runtime.tasks import finish_in_thread

log = logging.getLogger(__name__)

# Queued commands are looked for this often (sooner when the API says it queued one).
POLL_S = 1.0


class CommandDispatcher:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Any],
        metrics: IngestMetrics,
        *,
        now: Callable[[], datetime] = utc_now,
        name: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`metrics` are the process's counters (shared with its ingest worker)."""
        self._settings = settings
        self._sessions = sessions
        self.metrics = metrics
        self._now = now
        self._sleep = sleep
        self._name = name or f"commands-{uuid.uuid4().hex[:8]}"
        # Set by whoever queues a command (the API in this process); others are polled for.
        self.queued = asyncio.Event()

    async def run(self) -> None:
        """Publish until cancelled; a lost connection or any failure retries after a backoff."""
        await stay_connected(
            self._settings, f"anju-{self._name}", self._publish_queued, sleep=self._sleep
        )

    async def _publish_queued(self, client: aiomqtt.Client) -> None:
        failing = False  # the database: warned once per outage
        while True:
            self.queued.clear()
            try:
                claimed = await finish_in_thread(self._claim)
            except SQLAlchemyError as exc:  # the next look retries
                if not failing:
                    log.warning("[%s] commands not dispatched: %s", self._name, exc)
                failing, claimed = True, []
            else:
                failing = False
            for i, (command_id, gid, payload) in enumerate(claimed):
                try:
                    await client.publish(topic(gid, Kind.CMD), payload.encode(), qos=1)
                except aiomqtt.MqttError:
                    await finish_in_thread(self._unclaim, [c for c, _, _ in claimed[i:]])
                    raise
                self.metrics.commands_sent += 1
                log.info("[%s] command %s sent to %s", self._name, command_id, gid)
            if len(claimed) < service.CLAIM_LIMIT:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_S):
                        await self.queued.wait()

    def _claim(self) -> list[tuple[str, str, str]]:
        with self._sessions.begin() as session:
            return service.claim(session, self._now())

    def _unclaim(self, command_ids: list[str]) -> None:
        with self._sessions.begin() as session:
            service.unclaim(session, command_ids)
