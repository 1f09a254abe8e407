"""runtime.wait_for: Python 3.12's asyncio.wait_for, which never loses a cancellation.

The stdlib one of 3.11 is run on the same cases as the control, so the tests show that they
reach the moment it gets wrong.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from runtime.wait_for import STDLIB_WAIT_FOR, wait_for

pytestmark = pytest.mark.timeout(30)

WaitFor = Callable[[Awaitable[Any], float | None], Awaitable[Any]]
LOSES_CANCELLATION = sys.version_info < (3, 12)


async def cancel_as_it_completes(
    wait: WaitFor, complete: Callable[[asyncio.Future[str]], None]
) -> str:
    """Cancel a task waiting on a future in the very step that completes the future (a PUBACK or
    a refused connect arriving as the stop comes); how did the task end?"""
    fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(wait(fut, 10))
    await asyncio.sleep(0)  # the task is waiting now
    complete(fut)
    assert task.cancel()  # accepted: the task had not finished
    try:
        return f"ran on with {await task!r}"
    except asyncio.CancelledError:
        return "cancelled"
    except OSError as exc:
        return f"ran on with {exc!r}"


@pytest.mark.parametrize(
    "complete",
    [lambda f: f.set_result("puback"), lambda f: f.set_exception(ConnectionRefusedError())],
    ids=["result", "error"],
)
async def test_a_cancellation_that_arrives_as_the_wait_completes_is_kept(
    complete: Callable[[asyncio.Future[str]], None],
) -> None:
    assert await cancel_as_it_completes(wait_for, complete) == "cancelled"
    if LOSES_CANCELLATION:
        assert (await cancel_as_it_completes(STDLIB_WAIT_FOR, complete)).startswith("ran on")


async def test_on_timeout_the_wait_is_cancelled_then_timeout_error() -> None:
    ended: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("cleaned up")

    with pytest.raises(TimeoutError):
        await wait_for(slow(), 0.01)
    assert ended == ["cleaned up"]  # before wait_for returned, as in the stdlib


async def test_results_and_errors_pass_through() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def fail() -> None:
        await asyncio.sleep(0)
        raise ConnectionRefusedError

    assert await wait_for(answer(), 1) == 42
    assert await wait_for(answer(), None) == 42
    with pytest.raises(ConnectionRefusedError):
        await wait_for(fail(), 1)


async def test_a_zero_timeout_takes_what_is_done_and_cancels_the_rest() -> None:
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    done.set_result("ready")
    assert await wait_for(done, 0) == "ready"
    pending: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await wait_for(pending, 0)
    assert pending.cancelled()


@pytest.mark.parametrize("package", ["edge", "cloud", "anju"])
def test_importing_our_packages_installs_it(package: str) -> None:
    """aiomqtt and pymodbus call `asyncio.wait_for`: importing edge, cloud or anju (each process
    imports one) must have replaced it before they run."""
    code = (
        f"import asyncio, {package}; from runtime.wait_for import wait_for; "
        "print(asyncio.wait_for is wait_for)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == str(LOSES_CANCELLATION)
