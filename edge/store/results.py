"""Command results not yet published on `up/ack`, kept until the broker has taken them.

A table in the gateway's store (the outbox's SQLite file, its own connection), committed
before a result is offered to the uplink: a result produced while the link is down, or not
yet acknowledged by the broker (PUBACK), survives a restart and is published then, oldest
first. A result may so be published twice (a restart between PUBACK and the delete); the
cloud records a repeated result once.

Bounded: past `cap` stored results the oldest are deleted, and `add` says how many (the
channel logs them). Calls block on disk: the asyncio side runs them with `asyncio.to_thread`;
one lock serialises them on the connection.
"""

from __future__ import annotations

from pathlib import Path

from edge.store import sqlite

MAX_RESULTS = 1000


class ResultStore(sqlite.Table):
    def __init__(self, path: Path, *, cap: int = MAX_RESULTS) -> None:
        # AUTOINCREMENT: ids only grow, so they order results across restarts and deletions.
        super().__init__(
            path,
            "CREATE TABLE IF NOT EXISTS command_results ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB NOT NULL)",
        )
        self.cap = cap

    def add(self, payload: bytes) -> int:
        """Keep an encoded result (committed on return); how many of the oldest it pushed out."""
        with self._write():
            self._db.execute("INSERT INTO command_results (payload) VALUES (?)", (payload,))
            cur = self._db.execute(
                "DELETE FROM command_results WHERE id <= (SELECT id FROM command_results"
                " ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (self.cap,),
            )
        return cur.rowcount

    def oldest(self) -> tuple[int, bytes] | None:
        """The oldest stored result as (id, payload), if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, payload FROM command_results ORDER BY id LIMIT 1"
            ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def delete(self, result_id: int) -> None:
        """A result was published (deleting one already gone is no error)."""
        with self._lock:
            self._db.execute("DELETE FROM command_results WHERE id = ?", (result_id,))

    def pending(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM command_results").fetchone()
        return int(count)
