"""Holding a long action (a billing run, an import) part-way at its progress reports, so a
test sees an intermediate state for certain instead of racing the action."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from cloud.progress import BOARD, Progress

HOLD_S = 20.0  # the longest an action waits for the test to let it go


@dataclass
class Gate:
    """Holds the action reporting under `key` when it reports `at` done in `phase`, until
    `release` is set."""

    key: str
    phase: str
    at: int
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    total: int = 0

    def __call__(self, key: str, progress: Progress) -> None:
        if key == self.key and progress.phase == self.phase and progress.done == self.at:
            self.total = progress.total
            self.reached.set()
            self.release.wait(HOLD_S)


@contextmanager
def gated(monkeypatch: pytest.MonkeyPatch, gate: Gate) -> Iterator[Gate]:
    """The process's progress board records as before, then passes through `gate`."""
    record = BOARD.set

    def both(key: str, progress: Progress) -> None:
        record(key, progress)
        gate(key, progress)

    monkeypatch.setattr(BOARD, "set", both)
    try:
        yield gate
    finally:
        gate.release.set()
