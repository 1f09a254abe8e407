"""A lock's counters on the gateway, kept in a small private file.

`tx` is the next command counter this gateway may use. It is reserved in blocks: the file
holds the end of the block, written (and synced) before any counter of it goes out, so a crash
can skip counters but never reuse one. `rx` is the last counter accepted from the lock, kept
so that a restart does not reopen the door to replayed events. If the file is lost the lock
refuses the first command as stale and tells the gateway (authenticated) where to resume.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from protocols.errors import ConfigError
from protocols.lock.errors import LockRefusedError
from protocols.lock.frames import MAX_COUNTER
from runtime.private_files import FILE_MODE, private_folder

BLOCK = 64


class CounterFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.rx = 0
        self._next = 1
        self._reserved = 0  # counters below this may be used without writing
        # next_tx runs in a worker thread (it syncs), accept_rx on the event loop
        self._writing = threading.Lock()
        try:
            data = json.loads(path.read_bytes())
            tx, rx = int(data["tx"]), int(data["rx"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"lock counter file {path}: unreadable ({exc})") from None
        if not (0 <= tx <= MAX_COUNTER + 1 and 0 <= rx <= MAX_COUNTER):
            raise ConfigError(f"lock counter file {path}: counters out of range")
        self._next = self._reserved = max(tx, 1)
        self.rx = rx

    def next_tx(self) -> int:
        counter = self._next
        if counter > MAX_COUNTER:
            raise LockRefusedError("exhausted", "the lock's counters are used up: re-key it")
        if counter >= self._reserved:
            self._reserved = min(counter + BLOCK, MAX_COUNTER + 1)
            self._save(sync=True)
        self._next = counter + 1
        return counter

    def resume_after(self, counter: int) -> None:
        """The lock said (authenticated) that it has seen `counter`: continue above it."""
        if counter + 1 > self._next:
            self._next = counter + 1
            self._reserved = self._next  # the next use writes a fresh block

    def accept_rx(self, counter: int) -> None:
        self.rx = counter
        self._save(sync=False)

    def _save(self, *, sync: bool) -> None:
        with self._writing:
            private_folder(self.path.parent)
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                os.fchmod(fd, FILE_MODE)
                os.write(fd, json.dumps({"tx": self._reserved, "rx": self.rx}).encode())
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
