"""The ids of commands this gateway has accepted, kept until they expire.

A table in the gateway's store (the outbox's SQLite file, its own connection), committed
before a command runs: a replay is refused after a restart too, and a power cut between the
commit and the action loses the action rather than running it twice. An id is forgotten once
its command has expired (plus the clock skew), when the expiry check refuses it anyway.
"""

from __future__ import annotations

import math
import threading
import uuid
from datetime import datetime
from pathlib import Path

from edge.link import storefile


class ReplayMemory:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = storefile.connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS command_ids ("
            " id TEXT PRIMARY KEY, keep_until INTEGER NOT NULL) WITHOUT ROWID"
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def claim(self, command_id: uuid.UUID, keep_until: datetime, now: datetime) -> bool:
        """Remember `command_id` until `keep_until`; False if it is remembered already."""
        with self._lock, storefile.transaction(self._db):
            self._db.execute(
                "DELETE FROM command_ids WHERE keep_until < ?", (math.floor(now.timestamp()),)
            )
            cur = self._db.execute(
                "INSERT OR IGNORE INTO command_ids VALUES (?, ?)",
                (str(command_id), math.ceil(keep_until.timestamp())),
            )
        return cur.rowcount == 1

    def remembered(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM command_ids").fetchone()
        return int(count)
