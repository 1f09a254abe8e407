"""How far each long action of this process has got (a billing run, an import), by key.

A long action runs in one database transaction, so what it has done is not visible to
anyone else until it commits; its progress is kept here instead, where the API's status
routes and every console tab read it while it runs. The last state of a finished action
stays until the same key starts again (a tab opened afterwards shows how it ended), or until
`MAX_KEYS` later actions have pushed it out: the board keeps the most recent finished ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

DONE = "done"  # the phase of an action that finished
Report = Callable[[str, int, int], None]  # (phase, done, total)
MAX_KEYS = 1024  # finished actions kept (one a property and month, one an importing user)


def ignore(_phase: str, _done: int, _total: int) -> None:
    """The reporter of an action nobody watches."""


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str  # what the action is doing now, e.g. "rent", "utilities", "writing", "done"
    done: int
    total: int
    finished: bool = False


class Board:
    """The latest progress of each action by key; safe to use from several threads."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, Progress] = {}  # least recently set first
        self._max_keys = max_keys

    def set(self, key: str, progress: Progress) -> None:
        with self._lock:
            self._latest.pop(key, None)
            self._latest[key] = progress
            if len(self._latest) > self._max_keys:
                # The oldest finished action goes; one still running is never dropped.
                oldest = next((k for k, p in self._latest.items() if p.finished), None)
                if oldest is not None:
                    del self._latest[oldest]

    def clear(self) -> None:
        with self._lock:
            self._latest.clear()

    def get(self, key: str) -> Progress | None:
        with self._lock:
            return self._latest.get(key)

    def reporter(self, key: str) -> Report:
        """A Report that records under `key`."""
        self.set(key, Progress("starting", 0, 0))

        def report(phase: str, done: int, total: int) -> None:
            self.set(key, Progress(phase, done, total))

        return report

    @contextmanager
    def track(self, key: str) -> Iterator[Report]:
        """A reporter for one run of the action under `key`. When the block ends (after the
        caller's commit, so a watcher that sees "done" finds the result stored) the progress
        ends as done, or as "failed" where it stopped if the block raised."""
        report = self.reporter(key)
        outcome = "failed"
        try:
            yield report
            outcome = DONE
        finally:
            last = self.get(key) or Progress("starting", 0, 0)
            self.set(key, Progress(outcome, last.done, last.total, finished=True))


BOARD = Board()  # the process's one board (the API, the console and in-process jobs share it)


def billing_key(property_id: int, period: str) -> str:
    return f"billing-run:{property_id}:{period}"
