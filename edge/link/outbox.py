"""Durable store-and-forward outbox on SQLite (WAL, synchronous=FULL).

Every record of every kind gets the next per-gateway `seq` (`AUTOINCREMENT`: monotonic across
restarts and deletions). A row leaves only when the cloud says it has stored that `seq`, or when
the disk budget forces the oldest rows out; those are counted in `meta` and reported in the
gateway's state, never dropped silently.

A new store draws a random `epoch` (kept in `meta`). If the store is wiped, seqs start again
at 1 under a new epoch, and the cloud, which keys on `(gateway, epoch, seq)`, stores them as
new records instead of discarding them as duplicates. A store from before epochs keeps 0.

Calls block on disk: the asyncio side runs them with `asyncio.to_thread`. One lock serialises
them, since a sqlite3 connection must not interleave transactions from two threads.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocols.mqtt.messages import (
    MAX_EPOCH,
    MessageError,
    RecordKind,
    encode_records,
    record_size,
)

DROP_CHUNK_ROWS = 2000
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


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    seq: int
    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxStats:
    pending: int
    bytes: int
    last_seq: int
    acked_seq: int
    dropped: int
    dropped_upto: int


class Outbox:
    def __init__(self, path: Path, *, budget_bytes: int | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._budget = budget_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._tx():
            existing = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'"
            ).fetchone()
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outbox ("
                " seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body TEXT NOT NULL)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
            )
            for key in ("bytes", "acked_seq", "dropped", "dropped_upto"):
                self._db.execute("INSERT OR IGNORE INTO meta VALUES (?, 0)", (key,))
            # Pending rows, kept up to date so that `stats` (each reconnect attempt, each state
            # report) stays O(1) with a million rows buffered; counted once for an older store.
            self._db.execute("INSERT OR IGNORE INTO meta SELECT 'rows', COUNT(*) FROM outbox")
            new_epoch = 0 if existing else secrets.randbelow(MAX_EPOCH) + 1
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('epoch', ?)", (new_epoch,))
            self.epoch = self._meta("epoch")

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
                "INSERT INTO outbox (seq, kind, body) VALUES (?, ?, ?)",
                ((first + i, kind.value, b) for i, b in enumerate(bodies)),
            )
            self._add("bytes", size)
            self._add("rows", len(bodies))
            if self._budget is not None:
                self._enforce_budget(self._budget)
        return list(range(first, first + len(bodies)))

    def batch(self, *, after: int, max_records: int, max_bytes: int) -> list[OutboxRow]:
        """The next rows after `after`: one kind, at most `max_records` and `max_bytes`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, max_records),
            ).fetchall()
        out: list[OutboxRow] = []
        used = 0
        for seq, kind, body in rows:
            used += record_size(body)
            if out and (kind != out[0].kind or used > max_bytes):
                break
            out.append(OutboxRow(seq, RecordKind(kind), body))
        return out

    def pending(self, *, after: int = 0, limit: int = 500) -> list[OutboxRecord]:
        """Rows waiting for the cloud, decoded (for inspection and tests)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [OutboxRecord(seq, kind, json.loads(body)) for seq, kind, body in rows]

    def acknowledge(self, stored_seq: int) -> int:
        """Delete everything the cloud has stored; returns how many rows went."""
        with self._tx():
            (size,) = self._db.execute(
                f"SELECT COALESCE(SUM({_SQL_ROW_SIZE}), 0) FROM outbox WHERE seq <= ?",  # noqa: S608 - constant
                (stored_seq,),
            ).fetchone()
            cur = self._db.execute("DELETE FROM outbox WHERE seq <= ?", (stored_seq,))
            self._add("bytes", -int(size))
            self._add("rows", -cur.rowcount)
            self._db.execute(
                "UPDATE meta SET value = MAX(value, ?) WHERE key = 'acked_seq'", (stored_seq,)
            )
        return cur.rowcount

    def stats(self) -> OutboxStats:
        with self._lock:
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            last = self._last_seq()
        return OutboxStats(
            pending=meta["rows"],
            bytes=meta["bytes"],
            last_seq=last,
            acked_seq=meta["acked_seq"],
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
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
