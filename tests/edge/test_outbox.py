"""The gateway's outbox: durable seqs, ack-only deletion, batching by kind and size, budget."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.link.outbox import Outbox
from protocols.mqtt.messages import MessageError, RecordKind

TS = datetime(2026, 3, 1, tzinfo=UTC)


def readings(n: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {"meter": f"m-{i}", "point": "energy", "value": float(i), "ts": TS}
        for i in range(start, start + n)
    ]


def test_seq_survives_restart_and_acknowledged_rows_leave(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "gw.db")
    assert box.append("reading", readings(3)) == [1, 2, 3]
    assert box.acknowledge(2) == 2
    box.close()
    box = Outbox(tmp_path / "gw.db")
    try:
        assert box.append("reading", readings(1)) == [4]
        stats = box.stats()
        assert (stats.pending, stats.last_seq, stats.acked_seq) == (2, 4, 2)
        box.acknowledge(4)
        box.close()
        box = Outbox(tmp_path / "gw.db")
        assert box.append("reading", readings(1)) == [5], "seq reused after the outbox emptied"
        box.acknowledge(5)
        assert box.stats().bytes == 0
    finally:
        box.close()


def test_batches_hold_one_kind_and_respect_size(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "gw.db")
    try:
        box.append("reading", readings(5))
        box.append("event", [{"type": "door.open", "source": "d1", "ts": TS}])
        box.append("reading", readings(2))
        first = box.batch(after=0, max_records=100, max_bytes=10**6)
        assert [r.seq for r in first] == [1, 2, 3, 4, 5]
        assert {r.kind for r in first} == {RecordKind.READING}
        second = box.batch(after=5, max_records=100, max_bytes=10**6)
        assert [(r.seq, r.kind) for r in second] == [(6, RecordKind.EVENT)]
        assert [r.seq for r in box.batch(after=6, max_records=1, max_bytes=10**6)] == [7]
        small = box.batch(after=0, max_records=100, max_bytes=250)
        assert 1 <= len(small) < 5
    finally:
        box.close()


def test_invalid_records_are_refused_whole(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "gw.db")
    try:
        with pytest.raises(MessageError, match="kind"):
            box.append("gossip", [{"a": 1}])
        with pytest.raises(MessageError):
            box.append("reading", [*readings(2), {"meter": "m"}])
        assert box.stats().pending == 0
        assert box.append("reading", readings(1)) == [1]
    finally:
        box.close()


def test_budget_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "gw.db", budget_bytes=20_000)
    try:
        for chunk in range(10):
            box.append("reading", readings(50, start=chunk * 50))
        stats = box.stats()
        assert stats.bytes <= 20_000
        assert stats.dropped > 0
        assert stats.dropped + stats.pending == 500
        rows = box.batch(after=0, max_records=1000, max_bytes=10**7)
        assert rows[0].seq == stats.dropped_upto + 1, "must drop the oldest, and only those"
        assert rows[-1].seq == 500
    finally:
        box.close()


def test_appends_from_many_threads_get_distinct_seqs(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "gw.db")
    seqs: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(20):
            got = box.append("reading", readings(5))
            with lock:
                seqs.extend(got)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sorted(seqs) == list(range(1, 401))
    finally:
        box.close()


def test_a_new_store_draws_an_epoch_that_survives_restarts(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "gw.db")
    epoch = box.epoch
    box.append("reading", readings(2))
    box.close()
    assert epoch > 0
    box = Outbox(tmp_path / "gw.db")
    try:
        assert box.epoch == epoch
    finally:
        box.close()
    for name in ("gw.db", "gw.db-wal", "gw.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    box = Outbox(tmp_path / "gw.db")  # wiped: seqs start again, under another epoch
    try:
        assert box.append("reading", readings(1)) == [1]
        assert box.epoch not in (0, epoch)
    finally:
        box.close()


def test_a_store_from_before_epochs_keeps_epoch_zero(tmp_path: Path) -> None:
    """Its seqs go on from what the cloud already has under epoch 0."""
    box = Outbox(tmp_path / "gw.db")
    box.append("reading", readings(3))
    box.close()
    with sqlite3.connect(tmp_path / "gw.db") as db:
        db.execute("DELETE FROM meta WHERE key IN ('epoch', 'rows')")
    db.close()
    box = Outbox(tmp_path / "gw.db")
    try:
        assert box.epoch == 0
        assert box.stats().pending == 3
        assert box.append("reading", readings(1)) == [4]
    finally:
        box.close()
