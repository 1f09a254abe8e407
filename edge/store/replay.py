"""The ids of commands this gateway has accepted.

A table in the gateway's store (the outbox's SQLite file, its own connection), committed
before a command runs: a replay is refused after a restart too, and a power cut between the
commit and the action loses the action rather than running it twice.

Forgetting does not follow the gateway's clock, which may jump (a bad RTC, NTP setting it back):
had ids been forgotten once their command expired by that clock, a clock that jumped ahead and
came back would let a replay of a still-valid command run again. The memory keeps the newest
`cap` ids instead and forgets, past that, those whose commands expire first: 36 bytes an id,
and a hundred thousand is years of a building's commands.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from pathlib import Path

from edge.store import sqlite

MAX_IDS = 100_000


class ReplayMemory(sqlite.Table):
    def __init__(self, path: Path, *, cap: int = MAX_IDS) -> None:
        super().__init__(
            path,
            "CREATE TABLE IF NOT EXISTS command_ids ("
            " id TEXT PRIMARY KEY, keep_until INTEGER NOT NULL) WITHOUT ROWID",
        )
        self.cap = cap

    def claim(self, command_id: uuid.UUID, keep_until: datetime) -> bool:
        """Remember `command_id` (its command is void after `keep_until`); False if it is
        remembered already."""
        with self._write():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO command_ids VALUES (?, ?)",
                (str(command_id), math.ceil(keep_until.timestamp())),
            )
            if cur.rowcount == 1:
                # Never the id just taken: its command may be short-lived, and is live now.
                self._db.execute(
                    "DELETE FROM command_ids WHERE id IN (SELECT id FROM command_ids"
                    " WHERE id != ? ORDER BY keep_until, id"
                    " LIMIT max(0, (SELECT COUNT(*) FROM command_ids) - ?))",
                    (str(command_id), self.cap),
                )
        return cur.rowcount == 1

    def remembered(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM command_ids").fetchone()
        return int(count)
