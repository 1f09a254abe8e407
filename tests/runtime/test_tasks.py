"""runtime.tasks.until_one_fails: tasks that end together, and a stop that is never lost.

A TaskGroup on Python 3.11 is run on the same case as the control, so the test shows it
reaches the moment that TaskGroup gets wrong.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

import pytest

from runtime.tasks import until_one_fails

pytestmark = pytest.mark.timeout(10)


class DroppedError(Exception):
    """The connection went."""


async def fails(ready: asyncio.Event) -> None:
    await ready.wait()
    raise DroppedError


async def taskgroup(coros: dict[str, object]) -> None:
    async with asyncio.TaskGroup() as tg:
        for name, coro in coros.items():
            tg.create_task(coro, name=name)  # type: ignore[arg-type]


async def stop_while_unwinding(run: Callable[[dict[str, object]], Awaitable[None]]) -> str:
    """One part fails; while another takes a moment to unwind, the caller is cancelled."""
    failing, unwinding, unwound = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            unwinding.set()
            await unwound.wait()
            raise

    session = asyncio.create_task(run({"fails": fails(failing), "slow": slow_to_stop()}))
    await asyncio.sleep(0)
    failing.set()
    await unwinding.wait()
    session.cancel()
    unwound.set()
    try:
        await session
    except asyncio.CancelledError:
        return "stopped"
    except BaseExceptionGroup as group:
        if group.subgroup(DroppedError) is not None:
            return "the failure, and the stop lost"
        raise
    return "returned"


async def test_a_stop_while_the_others_unwind_after_a_failure_propagates() -> None:
    assert await stop_while_unwinding(until_one_fails) == "stopped"  # type: ignore[arg-type]
    if sys.version_info < (3, 12):
        assert await stop_while_unwinding(taskgroup) == "the failure, and the stop lost"


async def test_the_first_failure_is_raised_once_the_others_have_ended() -> None:
    ended: list[str] = []
    ready = asyncio.Event()

    async def other() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("other")

    ready.set()
    with pytest.raises(DroppedError):
        await until_one_fails({"fails": fails(ready), "other": other()})
    assert ended == ["other"]
    assert [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_a_stop_cancels_every_part_and_waits_for_them() -> None:
    started, ended = asyncio.Event(), []

    async def part(name: str) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)
            ended.append(name)

    session = asyncio.create_task(until_one_fails({"a": part("a"), "b": part("b")}))
    await started.wait()
    session.cancel()
    with pytest.raises(asyncio.CancelledError):
        await session
    assert sorted(ended) == ["a", "b"]
