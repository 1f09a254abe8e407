"""Capped exponential backoff with full jitter; auth failures jump straight to the cap."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    def __init__(
        self, *, base: float = 0.5, cap: float = 60.0, rand: Callable[[], float] = random.random
    ) -> None:
        self._base = base
        self._cap = cap
        self._rand = rand
        self.failures = 0

    def next_delay(self, *, to_cap: bool = False) -> float:
        # The exponent stops growing long before the cap matters: 2**1024 is no float, and a
        # link down for days fails that many times.
        ceiling = self._cap if to_cap else min(self._cap, self._base * 2 ** min(self.failures, 60))
        self.failures += 1
        return ceiling * self._rand()

    def reset(self) -> None:
        self.failures = 0
