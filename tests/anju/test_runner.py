"""`run_until_signal`: a service stops on SIGTERM even when one of its tasks loses the cancel."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)

SERVICE = textwrap.dedent(
    """
    import asyncio
    from anju.runner import run_until_signal, setup_logging

    async def deaf() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass  # lost, as Python 3.11's wait_for loses one inside aiomqtt or pymodbus
        await asyncio.Event().wait()

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(deaf(), name="deaf-task")
            print("ready", flush=True)

    setup_logging()
    run_until_signal(main(), nudge_s=float(__import__("sys").argv[1]))
    """
)


def test_a_task_that_lost_its_cancel_is_cancelled_again_and_named_in_the_log() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", SERVICE, "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=30)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0, err
    assert "task deaf-task still running 0.2 s after the stop; cancelling it again" in err
    assert "in deaf" in err  # its stack, to find who swallowed the cancel
    assert err.rstrip().endswith("anju.runner: stopped"), err
