"""Durable store-and-forward outbox on SQLite (WAL, synchronous=FULL).

Every record of every kind gets the next per-gateway `seq` (`AUTOINCREMENT`: monotonic across
restarts and deletions). A row leaves only when the cloud says it has stored that `seq`, or when
the disk budget forces the oldest rows out; those are counted in `meta` and reported in the
gateway's state, never dropped silently.

Each opening of the store draws a new random `epoch` and records where its seqs begin (the last
seq so far: its `start`); every row keeps the epoch it was written under, and the cloud keys
records and acknowledgements on `(gateway, epoch, seq)`. So records written after a restart can
never be taken for ones the cloud already has, even when the store was restored from a backup
and its seqs go again over ground the cloud has seen; a wiped store starts at seq 1, under a new
epoch too. Rows from before a restart are still sent, and acknowledged, under their own epoch.
Rows of a store made before epochs keep 0, and those of a store from before per-start epochs
keep its one epoch. One process writes to a store (the gateway); others may read it.

Calls block on disk: the asyncio side runs them with `asyncio.to_thread`. One lock serialises
them, since a sqlite3 connection must not interleave transactions from two threads.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.store import sqlite
from protocols.mqtt.messages import (
    MAX_EPOCH,
    MessageError,
    RecordKind,
    encode_records,
    record_size,
)

DROP_CHUNK_ROWS = 2000
# In the order the epochs began (`id`); `start` is the last seq before each one's first record.
EPOCHS_TABLE = (
    "CREATE TABLE IF NOT EXISTS epochs (id INTEGER PRIMARY KEY,"
    " epoch INTEGER NOT NULL UNIQUE, start INTEGER NOT NULL)"
)
_SQL_ROW_SIZE = "length(CAST(body AS BLOB)) + 24"  # the same as messages.record_size


def _kind(kind: str) -> RecordKind:
    try:
        return RecordKind(kind)
    except ValueError:
        raise MessageError("invalid", f"unknown record kind {kind!r}") from None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    kind: RecordKind
    body: str  # compact JSON of the record without its seq
    epoch: int

    @property
    def payload(self) -> dict[str, Any]:
        """The record decoded (for inspection and tests; the uplink sends `body` as it is)."""
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded


@dataclass(frozen=True, slots=True)
class OutboxStats:
    pending: int
    bytes: int
    last_seq: int
    acked_seq: int  # every row with seq <= it has left (stored, or dropped by the budget)
    dropped: int
    dropped_upto: int


class Outbox:
    def __init__(self, path: Path, *, budget_bytes: int | None = None) -> None:
        self._budget = budget_bytes
        self._lock = threading.Lock()
        self._db = sqlite.connect(path)
        with self._tx():
            existing = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'"
            ).fetchone()
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                " kind TEXT NOT NULL, body TEXT NOT NULL, epoch INTEGER NOT NULL)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
            )
            for key in ("bytes", "dropped", "dropped_upto"):
                self._db.execute("INSERT OR IGNORE INTO meta VALUES (?, 0)", (key,))
            # Pending rows, kept up to date so that `stats` (each reconnect attempt, each state
            # report) stays O(1) with a million rows buffered; counted once for an older store.
            self._db.execute("INSERT OR IGNORE INTO meta SELECT 'rows', COUNT(*) FROM outbox")
            if existing:
                self._upgrade()
            self._db.execute(EPOCHS_TABLE)
            self._forget_empty_epochs()
            taken = {e for (e,) in self._db.execute("SELECT epoch FROM epochs")}
            epoch = secrets.randbelow(MAX_EPOCH) + 1
            while epoch in taken:  # pragma: no cover - one chance in 2**63 per epoch held
                epoch = secrets.randbelow(MAX_EPOCH) + 1
            self.epoch = epoch
            self.epoch_start = self._last_seq()
            self._db.execute(
                "INSERT INTO epochs (epoch, start) VALUES (?, ?)", (epoch, self.epoch_start)
            )

    def _upgrade(self) -> None:
        """A store from before per-start epochs: its rows are of its one epoch (0 if it predates
        epochs), which began at seq 0."""
        columns = {c[1] for c in self._db.execute("PRAGMA table_info(outbox)")}
        if "epoch" in columns:
            return
        row = self._db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        old = int(row[0]) if row else 0
        self._db.execute(f"ALTER TABLE outbox ADD COLUMN epoch INTEGER NOT NULL DEFAULT {old}")
        self._db.execute(EPOCHS_TABLE)
        self._db.execute("INSERT INTO epochs (epoch, start) VALUES (?, 0)", (old,))

    def _forget_empty_epochs(self) -> None:
        """Drop the epochs no row is left of. With one writer, an epoch's rows lie between its
        start and the next epoch's, so each check is one range lookup on the primary key."""
        epochs = self._db.execute("SELECT epoch, start FROM epochs ORDER BY id").fetchall()
        ends: list[int | None] = [start for _, start in epochs[1:]]
        for (epoch, start), end in zip(epochs, [*ends, None][: len(epochs)], strict=True):
            if end is None:
                row = self._db.execute("SELECT 1 FROM outbox WHERE seq > ? LIMIT 1", (start,))
            else:
                row = self._db.execute(
                    "SELECT 1 FROM outbox WHERE seq > ? AND seq <= ? LIMIT 1", (start, end)
                )
            if row.fetchone() is None:
                self._db.execute("DELETE FROM epochs WHERE epoch = ?", (epoch,))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(self, kind: str, payloads: Sequence[dict[str, Any]]) -> list[int]:
        """Validate and store records in one durable transaction; returns their `seq`s in order.

        Raises `MessageError` for an unknown kind or an invalid record (a caller's bug): nothing
        of the call is stored then.
        """
        record_kind = _kind(kind)
        if not payloads:
            return []
        return self.append_json(record_kind, encode_records(record_kind, payloads))

    def append_json(self, kind: RecordKind, bodies: Sequence[str]) -> list[int]:
        """Store records already encoded by `protocols.mqtt.messages` (`encode_records` or a
        `ReadingTemplate`), in one durable transaction; returns their `seq`s in order."""
        if not bodies:
            return []
        size = sum(record_size(b) for b in bodies)
        with self._tx():
            first = self._last_seq() + 1
            self._db.executemany(
                "INSERT INTO outbox (seq, kind, body, epoch) VALUES (?, ?, ?, ?)",
                ((first + i, kind.value, b, self.epoch) for i, b in enumerate(bodies)),
            )
            # Back in case an opening since found it empty and forgot it (one writer: no-op).
            self._db.execute(
                "INSERT OR IGNORE INTO epochs (epoch, start) VALUES (?, ?)",
                (self.epoch, self.epoch_start),
            )
            self._add("bytes", size)
            self._add("rows", len(bodies))
            if self._budget is not None:
                self._enforce_budget(self._budget)
        return list(range(first, first + len(bodies)))

    def batch(self, *, after: int, max_records: int, max_bytes: int) -> list[OutboxRow]:
        """The next rows after `after`: one kind and one epoch, at most `max_records` and
        `max_bytes`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, body, epoch FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, max_records),
            ).fetchall()
        out: list[OutboxRow] = []
        used = 0
        for seq, kind, body, epoch in rows:
            used += record_size(body)
            if out and (kind != out[0].kind or epoch != out[0].epoch or used > max_bytes):
                break
            out.append(OutboxRow(seq, RecordKind(kind), body, epoch))
        return out

    def start_of(self, epoch: int) -> int:
        """The last seq before `epoch` began: every record of it has a greater seq."""
        with self._lock:
            row = self._db.execute("SELECT start FROM epochs WHERE epoch = ?", (epoch,)).fetchone()
        if row is None:
            raise KeyError(f"no epoch {epoch} in this store")
        return int(row[0])

    def pending(self, *, after: int = 0, limit: int = 500) -> list[OutboxRow]:
        """Rows waiting for the cloud (for inspection and tests)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, body, epoch FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [OutboxRow(seq, RecordKind(kind), body, epoch) for seq, kind, body, epoch in rows]

    def acknowledge(self, epoch: int, stored_seq: int) -> int:
        """Delete the rows of `epoch` the cloud has stored (an epoch this store does not hold,
        say a wiped store's, deletes nothing); returns the new `acked_seq`."""
        with self._tx():
            where = "WHERE epoch = ? AND seq <= ?"
            (size,) = self._db.execute(
                f"SELECT COALESCE(SUM({_SQL_ROW_SIZE}), 0) FROM outbox {where}",  # noqa: S608 - constant
                (epoch, stored_seq),
            ).fetchone()
            cur = self._db.execute(f"DELETE FROM outbox {where}", (epoch, stored_seq))  # noqa: S608 - constant
            self._add("bytes", -int(size))
            self._add("rows", -cur.rowcount)
            return self._acked_seq()

    def stats(self) -> OutboxStats:
        with self._lock:
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            last = self._last_seq()
            acked = self._acked_seq()
        return OutboxStats(
            pending=meta["rows"],
            bytes=meta["bytes"],
            last_seq=last,
            acked_seq=acked,
            dropped=meta["dropped"],
            dropped_upto=meta["dropped_upto"],
        )

    def _enforce_budget(self, budget: int) -> None:
        """Drop the oldest rows until the outbox fits its budget (inside the caller's tx)."""
        excess = self._meta("bytes") - budget
        while excess > 0:
            rows = self._db.execute(
                f"SELECT seq, {_SQL_ROW_SIZE} FROM outbox ORDER BY seq LIMIT ?",  # noqa: S608 - constant
                (DROP_CHUNK_ROWS,),
            ).fetchall()
            if not rows:
                return
            freed = count = 0
            cutoff = rows[0][0]
            for seq, size in rows:
                freed += size
                count += 1
                cutoff = seq
                if freed >= excess:
                    break
            self._db.execute("DELETE FROM outbox WHERE seq <= ?", (cutoff,))
            self._add("bytes", -freed)
            self._add("rows", -count)
            self._add("dropped", count)
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'dropped_upto'", (cutoff,))
            excess -= freed

    def _acked_seq(self) -> int:
        (oldest,) = self._db.execute("SELECT MIN(seq) FROM outbox").fetchone()
        return self._last_seq() if oldest is None else int(oldest) - 1

    def _last_seq(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return int(row[0]) if row else 0

    def _meta(self, key: str) -> int:
        (value,) = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(value)

    def _add(self, key: str, delta: int) -> None:
        self._db.execute("UPDATE meta SET value = value + ? WHERE key = ?", (delta, key))

    @contextmanager
    def _tx(self) -> Iterator[None]:
        with self._lock, sqlite.transaction(self._db):
            yield
