"""Run a long-lived coroutine until SIGINT or SIGTERM, then let it clean up."""

from __future__ import annotations

import asyncio
import io
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# A task still running this long after the stop is cancelled again, and its stack logged: one
# lost cancellation (a library that swallows it) must not keep a service from stopping.
STOP_NUDGE_S = 5.0


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for noisy in ("amqtt", "transitions", "pymodbus", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_gateway_file(config_path: Path, verbose: bool = False) -> None:
    """`anju edge run`: the gateway of the file at `config_path`, until a signal stops it."""
    from edge.config import load_config  # noqa: PLC0415 - the launcher wires edge in on use
    from edge.gateway import run_gateway  # noqa: PLC0415

    config = load_config(config_path)
    setup_logging(verbose)
    run_until_signal(run_gateway(config))


def _stack(task: asyncio.Task[Any]) -> str:
    out = io.StringIO()
    task.print_stack(file=out)
    return out.getvalue()


def run_until_signal(main: Coroutine[Any, Any, None], *, nudge_s: float = STOP_NUDGE_S) -> None:
    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)

        def nudge() -> None:
            for other in asyncio.all_tasks(loop):
                if other is not task and not other.done():
                    log.warning(
                        "task %s still running %g s after the stop; cancelling it again:\n%s",
                        other.get_name(),
                        nudge_s,
                        _stack(other),
                    )
                    other.cancel()
            loop.call_later(nudge_s, nudge)

        def stop() -> None:
            # Once is enough: a second signal during cleanup must not interrupt it.
            for sig in signals:
                loop.remove_signal_handler(sig)
                signal.signal(sig, signal.SIG_IGN)
            log.info("stopping")
            task.cancel()
            loop.call_later(nudge_s, nudge)

        for sig in signals:
            loop.add_signal_handler(sig, stop)
        try:
            await main
        except asyncio.CancelledError:
            log.info("stopped")

    asyncio.run(guarded())
