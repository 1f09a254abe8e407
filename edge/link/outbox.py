"""Durable store-and-forward outbox on SQLite (WAL, synchronous=FULL).

A row leaves only when the cloud says it has stored that `seq`; `AUTOINCREMENT` keeps `seq`
monotonic across restarts and deletions.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    kind: str
    payload: dict[str, Any]


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
            " payload TEXT NOT NULL)"
        )

    def close(self) -> None:
        self._db.close()

    def append(self, kind: str, payloads: Iterable[dict[str, Any]]) -> list[int]:
        """Store records in one transaction; returns their `seq`s in order."""
        seqs: list[int] = []
        with self._transaction():
            for payload in payloads:
                cur = self._db.execute(
                    "INSERT INTO outbox (kind, payload) VALUES (?, ?)", (kind, json.dumps(payload))
                )
                assert cur.lastrowid is not None
                seqs.append(cur.lastrowid)
        return seqs

    def pending(self, *, after: int = 0, limit: int = 500) -> list[OutboxRow]:
        rows = self._db.execute(
            "SELECT seq, kind, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [OutboxRow(seq, kind, json.loads(payload)) for seq, kind, payload in rows]

    def acknowledge(self, stored_seq: int) -> int:
        """Delete everything the cloud has stored; returns how many rows went."""
        with self._transaction():
            cur = self._db.execute("DELETE FROM outbox WHERE seq <= ?", (stored_seq,))
        return cur.rowcount

    def base_seq(self) -> int:
        """Highest seq below every pending row: all at or under it is acknowledged or dropped."""
        (low,) = self._db.execute("SELECT MIN(seq) FROM outbox").fetchone()
        if low is not None:
            return int(low) - 1
        (top,) = self._db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'"
        ).fetchone() or (0,)
        return int(top)

    def count(self) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(n)

    def _transaction(self) -> _Tx:
        return _Tx(self._db)


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
