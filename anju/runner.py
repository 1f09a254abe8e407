"""Run a long-lived coroutine until SIGINT or SIGTERM, then let it clean up."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for noisy in ("amqtt", "transitions", "pymodbus", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_until_signal(main: Coroutine[Any, Any, None]) -> None:
    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)

        def stop() -> None:
            # Once is enough: a second signal during cleanup must not interrupt it.
            for sig in signals:
                loop.remove_signal_handler(sig)
                signal.signal(sig, signal.SIG_IGN)
            task.cancel()

        for sig in signals:
            loop.add_signal_handler(sig, stop)
        try:
            await main
        except asyncio.CancelledError:
            return

    asyncio.run(guarded())
