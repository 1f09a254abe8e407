"""The gateway's store file: one SQLite file, a connection per table that lives in it."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runtime.private_files import private_file

# Page cache per connection, in KiB (SQLite's default is 2 MiB). The tables are written at one
# end and read back soon after, so the pages in use are few; the file's pages stay in the OS cache.
CACHE_KIB = 512


def connect(path: Path) -> sqlite3.Connection:
    """Autocommit (`transaction` for what must be atomic), usable from `asyncio.to_thread`'s
    threads (callers serialise with a lock), WAL, synchronous=FULL: durable on commit, and a
    small page cache: each table has a connection of its own, each cache is resident memory."""
    private_file(path)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT, rolled back if the block raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class Table:
    """A table of the store on a connection of its own; one lock serialises the calls (they come
    from `asyncio.to_thread`'s threads)."""

    def __init__(self, path: Path, schema: str) -> None:
        self._lock = threading.Lock()
        self._db = connect(path)
        self._db.execute(schema)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """The connection, locked, in a transaction."""
        with self._lock, transaction(self._db):
            yield self._db
