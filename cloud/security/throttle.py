"""Login throttling: a sliding window per client address, and lock-out per account."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

MAX_ATTEMPTS_PER_WINDOW = 10
WINDOW = timedelta(minutes=1)
LOCKOUT_AFTER_FAILURES = 5
LOCKOUT_FOR = timedelta(minutes=15)


class LoginThrottle:
    """In-process limiter. Several API processes each keep their own window: the per-account
    lock-out lives in the database and holds across processes."""

    def __init__(self, limit: int = MAX_ATTEMPTS_PER_WINDOW, window: timedelta = WINDOW) -> None:
        self._limit = limit
        self._window = window
        self._hits: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, now: datetime) -> bool:
        """Count one attempt from `client`; False when it is over the limit."""
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            while hits and hits[0] <= now - self._window:
                hits.popleft()
            if len(hits) >= self._limit:
                return False
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle clients so memory stays bounded
                for key in [k for k, v in self._hits.items() if not v]:
                    del self._hits[key]
            return True

    def retry_after(self, client: str, now: datetime) -> int:
        with self._lock:
            hits = self._hits.get(client)
            if not hits:
                return 0
            return max(1, int((hits[0] + self._window - now).total_seconds()) + 1)
