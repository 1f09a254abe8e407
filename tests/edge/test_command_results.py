"""Command results kept in the gateway's store until published: order, delete, the cap."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from edge.store.results import ResultStore
from edge.uplink.commands import CommandChannel

pytestmark = pytest.mark.timeout(30)


def test_results_come_back_oldest_first_across_a_reopen(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "gw.db")
    for n in range(3):
        assert store.add(b"r%d" % n) == 0
    first = store.oldest()
    assert first is not None
    assert first[1] == b"r0"
    store.delete(first[0])
    store.close()

    store = ResultStore(tmp_path / "gw.db")
    try:
        assert store.pending() == 2
        second = store.oldest()
        assert second is not None
        assert second[1] == b"r1"
        store.delete(second[0])
        store.delete(second[0])  # again: no error
        store.add(b"r3")
        left = []
        while (row := store.oldest()) is not None:
            left.append(row[1])
            store.delete(row[0])
        assert left == [b"r2", b"r3"]
        assert store.oldest() is None
    finally:
        store.close()


def test_the_cap_drops_the_oldest_and_says_how_many(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "gw.db", cap=3)
    try:
        assert [store.add(b"r%d" % n) for n in range(5)] == [0, 0, 0, 1, 1]
        assert store.pending() == 3
        oldest = store.oldest()
        assert oldest is not None
        assert oldest[1] == b"r2"
    finally:
        store.close()


async def test_the_channel_logs_what_the_cap_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ResultStore(tmp_path / "gw.db", cap=2)
    channel = CommandChannel("gw-1", store)
    try:
        for n in range(4):
            await channel.report(b"r%d" % n)
        assert channel.results_dropped == 2
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert [r.getMessage() for r in warnings] == [
            "[gw-1] more than 2 command results unpublished: dropped the 1 oldest (1 since start)",
            "[gw-1] more than 2 command results unpublished: dropped the 1 oldest (2 since start)",
        ]
        assert await channel.next_result() == b"r2"
    finally:
        store.close()


async def test_a_result_stays_first_until_published_and_outlives_the_channel(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    store = ResultStore(tmp_path / "gw.db")
    try:
        channel = CommandChannel("gw-1", store)
        await channel.report(b"a")
        await channel.report(b"b")
        assert await channel.next_result() == b"a"
        assert await channel.next_result() == b"a"  # not published: offered again
        channel.published()
        assert await channel.next_result() == b"b"
        assert store.pending() == 1  # "a" deleted once the uplink came back for more

        # a restart before "b" was published: the next run publishes it first
        channel = CommandChannel("gw-1", store)
        await channel.report(b"c")
        assert await channel.next_result() == b"b"
        assert "[gw-1] 2 command results waiting in the store to be published" in caplog.messages
        channel.published()
        assert await channel.next_result() == b"c"
        channel.published()

        waiting = asyncio.create_task(channel.next_result())
        await asyncio.sleep(0)
        assert not waiting.done()
        await channel.report(b"d")
        async with asyncio.timeout(5):
            assert await waiting == b"d"
        assert store.pending() == 1
    finally:
        store.close()


async def test_a_result_the_store_cannot_take_is_dropped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ResultStore(tmp_path / "gw.db")
    channel = CommandChannel("gw-1", store)
    store.close()  # as a store that can no longer be written
    await channel.report(b"r")  # the handler goes on
    assert channel.results_dropped == 1
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "could not be stored" in record.getMessage()
