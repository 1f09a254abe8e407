"""The access-list publisher: looks at every gateway's inputs and publishes what each needs on
`down/access`, every `POLL_S` or sooner when told that records changed, over a connection of
its own. A look compiles only the gateways whose inputs moved since their last compile (the
digest is kept with the gateway's sync row, so a restart compiles nothing that did not move:
`sync.sync_changed`), and sends again only what a gateway has not reported applied. It runs
beside an ingest worker, as a sibling task started by whoever starts the worker (the API
process, `anju cloud ingest`)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from cloud.access import sync
from cloud.commands.keys import key_reader
from cloud.config import Settings
from cloud.mqtt import stay_connected
from cloud.security.crypto import FieldKeys
from protocols.errors import AnjuError
from protocols.mqtt.topics import Kind, topic
from runtime.tasks import finish_in_thread, first_of

log = logging.getLogger(__name__)

# A change in the records reaches an online gateway within this (plus a publish); the API
# wakes the publisher at once for the changes it makes.
POLL_S = 5.0


class AccessPublisher:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Any],
        keys: FieldKeys,
        signing_key: Callable[[], Ed25519PrivateKey],
        *,
        tz: ZoneInfo,
        now: Callable[[], datetime],
        poll_s: float = POLL_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._sessions = sessions
        self._keys = keys
        self._signing_key = signing_key
        self._tz = tz
        self._now = now
        self._poll_s = poll_s
        self.changed = asyncio.Event()
        self.looks = 0
        self.compiled = 0  # gateways compiled, over all looks
        self.published = 0

    def _sync(self) -> list[sync.Outgoing]:
        key = self._signing_key()
        with self._sessions.begin() as session:
            outgoing, compiled = sync.sync_changed(
                session, self._keys, key, now=self._now(), tz=self._tz
            )
        self.compiled += len(compiled)
        return outgoing

    def _unsend(self, gateway_ids: list[str]) -> None:
        with self._sessions.begin() as session:
            sync.unsend(session, gateway_ids)

    async def run(self) -> None:
        """Publish until cancelled; a lost connection or any failure retries after a backoff."""
        identifier = f"anju-access-{uuid.uuid4().hex[:8]}"
        await stay_connected(self._settings, identifier, self._publish, sleep=self._sleep)

    async def _publish(self, client: aiomqtt.Client) -> None:
        failing = False  # warned once per outage
        while True:
            self.changed.clear()
            try:
                outgoing = await finish_in_thread(self._sync)
            except (SQLAlchemyError, AnjuError, ValueError) as exc:  # the next look retries
                if not failing:
                    log.warning("access lists not compiled: %s", exc)
                failing, outgoing = True, []
            else:
                failing = False
            for i, item in enumerate(outgoing):
                try:
                    await client.publish(topic(item.gateway_id, Kind.ACCESS), item.payload, qos=1)
                except aiomqtt.MqttError:
                    await finish_in_thread(self._unsend, [o.gateway_id for o in outgoing[i:]])
                    raise
                self.published += 1
                log.info(
                    "[%s] access list version %d sent (%d bytes)",
                    item.gateway_id,
                    item.version,
                    len(item.payload),
                )
            self.looks += 1
            await first_of(self.changed.wait(), self._sleep(self._poll_s))


def publisher_for(
    settings: Settings,
    sessions: sessionmaker[Any],
    keys: FieldKeys,
    *,
    now: Callable[[], datetime],
    signing_key: Callable[[], Ed25519PrivateKey] | None = None,
) -> AccessPublisher:
    """The configured publisher; the command key is read when the first list is signed."""
    return AccessPublisher(
        settings,
        sessions,
        keys,
        signing_key or key_reader(settings),
        tz=ZoneInfo(settings.timezone),
        now=now,
    )
