"""The commands a gateway runs, in one table: name → coroutine taking the verified command.

An action validates its own `args` and raises `ActionFailedError` with a reason the cloud can
show; what it returns is the result's `data`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from importlib.metadata import version
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.door.lock import Lock, UnlockRequest
from edge.store.outbox import Outbox
from edge.uplink.commands import Action, ActionFailedError
from protocols.mqtt.commands import Command

A = TypeVar("A", bound=BaseModel)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class NoArgs(_Args):
    pass


class UnlockArgs(_Args):
    door: Annotated[str, Field(min_length=1, max_length=64)]
    hold_s: Annotated[float, Field(gt=0, le=60)] = 5.0


def parse_args(model: type[A], command: Command) -> A:
    try:
        return model.model_validate(command.args)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "args"
        raise ActionFailedError(f"{command.name}: {where}: {first['msg']}") from None


def builtin_actions(
    outbox: Outbox,
    locks: Mapping[str, Lock],
    *,
    now: Callable[[], datetime],
    monotonic: Callable[[], float] = time.monotonic,
) -> dict[str, Action]:
    started = monotonic()

    async def ping(command: Command) -> dict[str, Any]:
        """Is the gateway there, what runs on it, and how far behind is its outbox."""
        parse_args(NoArgs, command)
        stats = await asyncio.to_thread(outbox.stats)
        return {
            "version": version("anju"),
            "uptime_s": round(monotonic() - started, 3),
            "outbox": {
                "pending": stats.pending,
                "bytes": stats.bytes,
                "last_seq": stats.last_seq,
                "acked_seq": stats.acked_seq,
                "dropped": stats.dropped,
            },
        }

    async def door_unlock(command: Command) -> dict[str, Any]:
        """Open a door of this gateway remotely (a locked-out tenant, a delivery)."""
        args = parse_args(UnlockArgs, command)
        lock = locks.get(args.door)
        if lock is None:
            raise ActionFailedError(f"no door {args.door!r} on this gateway")
        await lock.unlock(UnlockRequest(args.door, f"command:{command.id}", args.hold_s, now()))
        return {"door": args.door, "hold_s": args.hold_s}

    return {"ping": ping, "door.unlock": door_unlock}
