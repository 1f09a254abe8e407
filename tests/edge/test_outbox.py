"""The gateway's outbox: durable seqs, ack-only deletion, batching by kind and size, budget."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.store.outbox import Outbox
from edge.store.sqlite import CACHE_KIB, connect
from protocols.mqtt.messages import MessageError, RecordKind, encode_records

TS = datetime(2026, 3, 1, tzinfo=UTC)


def readings(n: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {"meter": f"m-{i}", "point": "energy", "value": float(i), "ts": TS}
        for i in range(start, start + n)
    ]


def test_seq_survives_restart_and_acknowledged_rows_leave(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "gw.db")
    first = box.epoch
    assert box.append("reading", readings(3)) == [1, 2, 3]
    assert box.acknowledge(first, 2) == 2
    box.close()
    box = Outbox(tmp_path / "gw.db")
    try:
        assert box.append("reading", readings(1)) == [4]
        stats = box.stats()
        assert (stats.pending, stats.last_seq, stats.acked_seq) == (2, 4, 2)
        assert box.acknowledge(box.epoch, 4) == 2, "seq 3 is of the first epoch: it stays"
        assert box.acknowledge(first, 3) == 4
        box.close()
        box = Outbox(tmp_path / "gw.db")
        assert box.append("reading", readings(1)) == [5], "seq reused after the outbox emptied"
        box.acknowledge(box.epoch, 5)
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


def test_each_opening_writes_under_a_new_epoch_and_rows_keep_theirs(tmp_path: Path) -> None:
    """A restart (or a store restored from a backup) writes under an epoch the cloud has not
    seen, starting after the last seq; older rows go out, and are acked, under their own."""
    box = Outbox(tmp_path / "gw.db")
    first, first_start = box.epoch, box.epoch_start
    box.append("reading", readings(2))
    box.close()
    assert (first > 0, first_start) == (True, 0)
    box = Outbox(tmp_path / "gw.db")
    try:
        assert box.epoch not in (0, first)
        assert box.epoch_start == 2
        box.append("reading", readings(2))
        rows = box.batch(after=0, max_records=100, max_bytes=10**6)
        assert [(r.seq, r.epoch) for r in rows] == [(1, first), (2, first)], "one epoch a batch"
        rows = box.batch(after=2, max_records=100, max_bytes=10**6)
        assert [(r.seq, r.epoch) for r in rows] == [(3, box.epoch), (4, box.epoch)]
        assert (box.start_of(first), box.start_of(box.epoch)) == (0, 2)
        with pytest.raises(KeyError):
            box.start_of(first + 1)
    finally:
        box.close()


def test_epochs_with_no_rows_left_are_forgotten(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "gw.db")
    first = box.epoch
    box.append("reading", readings(2))
    box.close()
    for _ in range(3):  # openings that write nothing
        Outbox(tmp_path / "gw.db").close()
    box = Outbox(tmp_path / "gw.db")
    try:
        with sqlite3.connect(tmp_path / "gw.db") as db:
            held = [e for (e,) in db.execute("SELECT epoch FROM epochs ORDER BY id")]
        db.close()
        assert held == [first, box.epoch]
        box.acknowledge(first, 2)
    finally:
        box.close()
    box = Outbox(tmp_path / "gw.db")
    try:
        assert box.start_of(box.epoch) == 2
        with pytest.raises(KeyError):
            box.start_of(first)
    finally:
        box.close()


def test_a_wiped_store_starts_at_seq_1_under_a_new_epoch(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "gw.db")
    epoch = box.epoch
    box.append("reading", readings(2))
    box.close()
    for name in ("gw.db", "gw.db-wal", "gw.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    box = Outbox(tmp_path / "gw.db")
    try:
        assert box.append("reading", readings(1)) == [1]
        assert box.epoch not in (0, epoch)
        assert box.acknowledge(epoch, 1) == 0, "an ack of the wiped store's epoch deletes nothing"
    finally:
        box.close()


@pytest.mark.parametrize("old_epoch", [0, 77], ids=["before-epochs", "one-epoch-a-store"])
def test_a_store_from_before_per_start_epochs_keeps_its_rows_epoch(
    tmp_path: Path, old_epoch: int
) -> None:
    """Its rows go on under the epoch the cloud already has them under (0 before epochs)."""
    with sqlite3.connect(tmp_path / "gw.db") as db:
        db.execute(
            "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
            " body TEXT NOT NULL)"
        )
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        if old_epoch:
            db.execute("INSERT INTO meta VALUES ('epoch', ?)", (old_epoch,))
        body = encode_records(RecordKind.READING, readings(3))
        db.executemany(
            "INSERT INTO outbox (kind, body) VALUES ('reading', ?)", [(b,) for b in body]
        )
    db.close()
    box = Outbox(tmp_path / "gw.db")
    try:
        assert box.stats().pending == 3
        rows = box.batch(after=0, max_records=100, max_bytes=10**6)
        assert [(r.seq, r.epoch) for r in rows] == [(1, old_epoch), (2, old_epoch), (3, old_epoch)]
        assert box.start_of(old_epoch) == 0
        assert box.epoch not in (0, old_epoch)
        assert box.append("reading", readings(1)) == [4]
        assert (box.epoch_start, box.acknowledge(old_epoch, 3)) == (3, 3)
    finally:
        box.close()


def test_each_store_connection_caches_a_bounded_number_of_pages(tmp_path: Path) -> None:
    """Each table of the store has a connection of its own: SQLite's default 2 MiB page cache
    on each is resident memory the gateway does not need."""
    db = connect(tmp_path / "gw.db")
    try:
        assert db.execute("PRAGMA cache_size").fetchone() == (-CACHE_KIB,)
        assert CACHE_KIB <= 512
    finally:
        db.close()
