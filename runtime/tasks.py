"""Tasks that live and die together, without Python 3.11's TaskGroup.

When one child of a 3.11 TaskGroup has already failed (say the connection dropped), a cancel of
the parent that arrives while the group waits for the other children is swallowed, and the
child's error raised instead (CPython gh-116720, fixed in 3.12 and 3.13); a reconnect loop that
retries on that error then went on with nobody left to stop it. The group also leaves its
parent's `cancelling()` count raised, so the loop cannot tell a stop from a failure either.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


async def until_one_fails(coros: Mapping[str, Coroutine[Any, Any, None]]) -> None:
    """Run the coroutines as named tasks until one of them ends; then cancel and wait for the
    others and raise the first one's error. A cancel of the caller at any point propagates."""
    tasks = [asyncio.create_task(coro, name=name) for name, coro in coros.items()]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            await asyncio.wait(tasks)  # they were told to stop already: let them finish
            raise
        finally:
            for task in tasks:
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved: the first error is raised below
    for task in done:
        task.result()


async def first_of(*waits: Awaitable[Any]) -> None:
    """Until one of `waits` ends (a timer, an event); the others are cancelled and awaited, so a
    driven `sleep` passed in never outlives the wait."""
    futures = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            future.cancel()
        await asyncio.gather(*futures, return_exceptions=True)


async def finish_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn` in a thread; if we are cancelled meanwhile, let it finish first, so that no
    transaction is still running (or holding a pooled connection) after the worker stops."""
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise
