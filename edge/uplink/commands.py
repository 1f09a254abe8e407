"""The command handler: checks what the cloud sent on `down/cmd`, runs it, reports on `up/ack`.

The uplink holds the MQTT session; a `CommandChannel` is all it shares with the handler: raw
payloads in, encoded results out (kept in the store until published, across reconnects and
restarts). The handler runs one command at a time in its own task, so a slow lock never holds
up the uplink's acks.

A command runs only if it verifies with the configured key, names this gateway, has not
expired (allowing the clock skew), names a known action, and its id was not seen before.
Each refusal is logged once and reported with its reason.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from edge.config import CommandSettings
from edge.store.replay import ReplayMemory
from edge.store.results import ResultStore
from protocols.errors import AnjuError, ConfigError
from protocols.mqtt import messages as msg
from protocols.mqtt.bounds import MAX_DETAIL_CHARS
from protocols.mqtt.commands import (
    Command,
    CommandRejectedError,
    CommandResult,
    Reason,
    Status,
    check,
    load_public_key,
)
from protocols.text import printable

if TYPE_CHECKING:
    from nacl.signing import VerifyKey

    from protocols.ed25519 import PublicKey

log = logging.getLogger(__name__)

# Commands waiting for the handler; past this a flood is dropped (and logged) at the door.
MAX_WAITING = 64
# An action that takes longer (a lock that never answers) is reported failed.
ACTION_TIMEOUT_S = 30.0

Action = Callable[[Command], Awaitable[dict[str, Any]]]


class ActionFailedError(AnjuError):
    """A command ran and did not succeed; the message is the result's `detail`."""


def command_key(settings: CommandSettings) -> VerifyKey | None:
    if settings.public_key is not None:
        return load_public_key(settings.public_key)
    if settings.public_key_file is None:
        return None
    try:
        data = settings.public_key_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"commands.public_key_file {settings.public_key_file}: {exc}") from None
    try:
        return load_public_key(data)
    except ConfigError as exc:
        raise ConfigError(f"commands.public_key_file {settings.public_key_file}: {exc}") from None


class CommandChannel:
    """Between the uplink and the handler. Results are kept in the store (`ResultStore`)
    from `report` until `published`, so those of a previous run are published first."""

    def __init__(self, gateway_id: str, results: ResultStore) -> None:
        self._gateway_id = gateway_id
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue(MAX_WAITING)
        self._results = results
        self._have_results = asyncio.Event()
        self._first = True
        self._offered: int | None = None  # the id of the result `next_result` gave out
        self._published: int | None = None  # published; deleted on the next `next_result`
        self.dropped = 0
        self.results_dropped = 0

    def deliver(self, payload: bytes) -> None:
        """The uplink received a `down/cmd` payload."""
        try:
            self._inbox.put_nowait(payload)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning(
                "[%s] %d commands already waiting; dropped one", self._gateway_id, MAX_WAITING
            )

    async def next_command(self) -> bytes:
        return await self._inbox.get()

    async def report(self, payload: bytes) -> None:
        """Keep a result for the uplink (committed to the store on return)."""
        try:
            dropped = await asyncio.to_thread(self._results.add, payload)
        except sqlite3.Error as exc:  # the command ran: losing its report beats stopping
            self.results_dropped += 1
            log.error(  # noqa: TRY400 - the message says it all; no stack for a disk error
                "[%s] a command result could not be stored, dropped: %s", self._gateway_id, exc
            )
            return
        self._have_results.set()
        if dropped:
            self.results_dropped += dropped
            log.warning(
                "[%s] more than %d command results unpublished: dropped the %d oldest"
                " (%d since start)",
                self._gateway_id,
                self._results.cap,
                dropped,
                self.results_dropped,
            )

    async def next_result(self) -> bytes:
        """The oldest result not yet published (it stays first until `published`)."""
        if self._first:
            self._first = False
            waiting = await asyncio.to_thread(self._results.pending)
            if waiting:
                log.info(
                    "[%s] %d command results waiting in the store to be published",
                    self._gateway_id,
                    waiting,
                )
        while True:
            self._have_results.clear()
            if self._published is not None:
                await asyncio.to_thread(self._results.delete, self._published)
                self._published = None
            oldest = await asyncio.to_thread(self._results.oldest)
            if oldest is not None:
                self._offered, payload = oldest
                return payload
            await self._have_results.wait()

    def published(self) -> None:
        """The broker took the result `next_result` gave (deleted from the store next time:
        this is called on the event loop)."""
        self._published = self._offered


class CommandHandler:
    def __init__(
        self,
        gateway_id: str,
        key: PublicKey | None,
        memory: ReplayMemory,
        channel: CommandChannel,
        actions: Mapping[str, Action],
        *,
        now: Callable[[], datetime],
        skew: timedelta,
    ) -> None:
        self._gateway_id = gateway_id
        self._key = key
        self._memory = memory
        self._channel = channel
        self._actions = actions
        self._now = now
        self._skew = skew
        self.results: collections.Counter[str] = collections.Counter()

    async def run(self) -> None:
        gid = self._gateway_id
        if self._key is None:
            log.warning(
                "[%s] no commands.public_key configured: every command will be refused", gid
            )
        else:
            log.info("[%s] commands: %s", gid, ", ".join(sorted(self._actions)))
        while True:
            payload = await self._channel.next_command()
            result = await self.handle(payload)
            await self._channel.report(msg.encode(result))

    async def handle(self, payload: bytes) -> CommandResult:
        try:
            command = msg.decode(Command, payload)
        except msg.MessageError as exc:
            return self._refused(_readable_id(payload), Reason.MALFORMED, str(exc))
        try:
            await self._admit(command)
        except CommandRejectedError as exc:
            return self._refused(command.id, exc.reason, exc.detail)
        except sqlite3.Error as exc:  # not run: a replay could not be ruled out
            return self._failed(command, f"not run: the replay memory failed ({exc})")
        return await self._execute(command)

    async def _admit(self, command: Command) -> None:
        now = self._now()
        check(command, self._key, gateway_id=self._gateway_id, now=now, skew=self._skew)
        if command.name not in self._actions:
            raise CommandRejectedError(
                Reason.UNKNOWN_COMMAND, f"this gateway has no command {command.name!r}"
            )
        keep_until = command.expires_at + self._skew
        if not await asyncio.to_thread(self._memory.claim, command.id, keep_until):
            raise CommandRejectedError(Reason.REPLAYED, f"command {command.id} was run before")

    async def _execute(self, command: Command) -> CommandResult:
        gid = self._gateway_id
        try:
            async with asyncio.timeout(ACTION_TIMEOUT_S):
                data = await self._actions[command.name](command)
        except ActionFailedError as exc:
            return self._failed(command, str(exc))
        except TimeoutError:
            return self._failed(command, f"no answer in {ACTION_TIMEOUT_S:.0f} s")
        except Exception as exc:  # an action's bug must not stop the gateway
            log.exception("[%s] command %s (%s) raised", gid, command.name, command.id)
            return self._failed(command, f"{type(exc).__name__}: {exc}")
        try:
            result = self._result(command.id, Status.DONE, data=data)
        except ValidationError as exc:
            return self._failed(command, f"the answer cannot be reported: {exc.errors()[0]['msg']}")
        self.results["done"] += 1
        log.info("[%s] command %s (%s) done", gid, command.name, command.id)
        return result

    def _failed(self, command: Command, detail: str) -> CommandResult:
        self.results["failed"] += 1
        detail = printable(detail, MAX_DETAIL_CHARS)  # logs are UTF-8 too: no NUL or surrogate
        log.warning(
            "[%s] command %s (%s) failed: %s", self._gateway_id, command.name, command.id, detail
        )
        return self._result(command.id, Status.FAILED, detail=detail)

    def _refused(self, command_id: uuid.UUID | None, reason: Reason, detail: str) -> CommandResult:
        self.results[reason.value] += 1
        detail = printable(detail, MAX_DETAIL_CHARS)
        log.warning(
            "[%s] command %s refused (%s): %s", self._gateway_id, command_id, reason, detail
        )
        return self._result(command_id, Status.REJECTED, reason=reason, detail=detail)

    def _result(
        self,
        command_id: uuid.UUID | None,
        status: Status,
        *,
        reason: Reason | None = None,
        detail: str = "",
        data: dict[str, Any] | None = None,
    ) -> CommandResult:
        return CommandResult(
            gateway_id=self._gateway_id,
            command_id=command_id,
            status=status,
            reason=reason,
            detail=printable(detail, MAX_DETAIL_CHARS),
            data=data or {},
            ts=self._now(),
        )


def _readable_id(payload: bytes) -> uuid.UUID | None:
    """The id of a payload that is not a valid command, if there is one to report it under."""
    try:
        return uuid.UUID(str(json.loads(payload)["id"]))
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
