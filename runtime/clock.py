"""The wall clock, read in one place. Code takes `now=` callables; this is their default."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
