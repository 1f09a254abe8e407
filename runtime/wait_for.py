"""Python 3.12's `asyncio.wait_for`, installed on 3.11.

On 3.11, a cancellation that arrives in the loop iteration where the awaited thing completes is
lost: wait_for returns its result (or raises its error) instead (CPython gh-86296; 3.12 rebuilt
wait_for on `asyncio.timeout`). aiomqtt waits for every PUBACK and SUBACK with it, pymodbus for
every connect and reply, so a service told to stop at that moment ran on, and the task group
waiting for it never ended: a gateway that ignored SIGTERM. Installing it is process-wide on
purpose: the waits that lose the cancellation are inside those libraries.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

STDLIB_WAIT_FOR: Any = asyncio.wait_for


async def wait_for(fut: Awaitable[T], timeout: float | None) -> T:  # noqa: ASYNC109 - its API
    """As in Python 3.12: a cancellation always propagates; on timeout, `fut` is cancelled and
    waited for, then TimeoutError is raised."""
    if timeout is not None and timeout <= 0:
        task = asyncio.ensure_future(fut)
        if not task.done():
            task.cancel()
            await asyncio.wait([task])
        try:
            return task.result()
        except asyncio.CancelledError as exc:
            raise TimeoutError from exc
    async with asyncio.timeout(timeout):
        return await fut


def install() -> None:
    """Replace `asyncio.wait_for` before 3.12 (idempotent). The libraries call it as
    `asyncio.wait_for`, looked up at each call, so installing late still reaches them."""
    if sys.version_info < (3, 12):
        # The stdlib's stub types `fut` wider (generators); the same calls reach ours.
        asyncio.wait_for = wait_for  # type: ignore[assignment]
        asyncio.tasks.wait_for = wait_for  # type: ignore[assignment]
