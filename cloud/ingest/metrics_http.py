"""`GET /metrics` for an ingest worker running on its own (`anju cloud ingest --metrics-port`).

`anju cloud serve` answers /metrics from its FastAPI app; a standalone worker has no HTTP
stack, and a scrape endpoint needs none: one request line, one plain-text answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from cloud.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 5.0
MAX_HEAD_BYTES = 8192


async def serve_metrics(render: Callable[[], str], host: str, port: int) -> asyncio.Server:
    """Listen on host:port; `GET /metrics` answers `render()`, anything else 404 or 405."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            status, body = _answer(head[:MAX_HEAD_BYTES], render)
            data = body.encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE}\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass  # a scraper that went away or never spoke HTTP: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, host, port, limit=MAX_HEAD_BYTES)
    log.info("metrics at http://%s:%d/metrics", host, port)
    return server


def _answer(head: bytes, render: Callable[[], str]) -> tuple[str, str]:
    method, _, rest = head.partition(b" ")
    path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
    if path != b"/metrics":
        return "404 Not Found", "not found\n"
    if method != b"GET":
        return "405 Method Not Allowed", "method not allowed\n"
    return "200 OK", render()
