"""Shared fixtures: real brokers and databases, and a guard against leaked tasks and threads.

Broker- and database-dependent fixtures run on the embedded defaults (amqtt, SQLite) and, when
ANJU_TEST_MQTT_URL / ANJU_TEST_DATABASE_URL are set, also against those servers.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from anju.broker import embedded_broker
from cloud import migrate
from cloud.db import scratch_schema
from cloud.progress import BOARD

MQTT_URL = os.environ.get("ANJU_TEST_MQTT_URL")
DATABASE_URL = os.environ.get("ANJU_TEST_DATABASE_URL")
THREAD_GRACE_S = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    # Collect now, so an unclosed socket or connection warns in the test that leaked it.
    gc.collect()
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in leaked:
        thread.join(THREAD_GRACE_S)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"test left threads running: {still}"


@pytest.fixture(autouse=True)
async def no_leaked_tasks(no_leaked_threads: None) -> AsyncIterator[None]:
    """Depends on the thread guard so that it tears down first and joins the loop's pool."""
    yield
    current = asyncio.current_task()
    for _ in range(3):  # let tasks that were cancelled in teardown finish
        await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in leaked:
        task.cancel()
    if leaked:
        await asyncio.gather(*leaked, return_exceptions=True)
    assert not leaked, f"test left tasks running: {[t.get_name() for t in leaked]}"
    # asyncio.to_thread's pool belongs to the loop; join it so the thread guard sees real leaks.
    await asyncio.get_running_loop().shutdown_default_executor()


@pytest.fixture(autouse=True)
def fresh_progress_board() -> Iterator[None]:
    """The process's progress board (cloud.progress) starts every test empty: one test's run or
    import is no other test's "latest"."""
    BOARD.clear()
    yield
    BOARD.clear()


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems give a service (022), so a file's mode shows what we chose."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# ---- MQTT ---------------------------------------------------------------------------------

MQTT_PARAMS = ["amqtt"] + (["mosquitto"] if MQTT_URL else [])


@pytest.fixture(params=MQTT_PARAMS)
async def mqtt_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A broker URL: an embedded amqtt on a free port, or the configured Mosquitto."""
    if request.param == "mosquitto":
        assert MQTT_URL is not None
        yield MQTT_URL
        return
    port = free_port()
    async with embedded_broker("127.0.0.1", port):
        yield f"mqtt://127.0.0.1:{port}"


def mqtt_protocol(url: str) -> str:
    """amqtt speaks MQTT 3.1.1 only; real brokers get MQTT 5."""
    return "5" if MQTT_URL and url == MQTT_URL else "3.1.1"


# ---- Databases ----------------------------------------------------------------------------

DB_PARAMS = ["sqlite"] + (["postgresql"] if DATABASE_URL else [])


@pytest.fixture(params=DB_PARAMS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database: a SQLite file, or a fresh schema on the PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cloud.db'}"
        migrate.upgrade(url)
        yield url
        return
    with postgres_schema() as url:
        migrate.upgrade(url)
        yield url


def postgres_schema() -> AbstractContextManager[str]:
    """A URL of the test PostgreSQL server whose search_path is a fresh schema, dropped after."""
    assert DATABASE_URL is not None
    return scratch_schema(DATABASE_URL)
