"""Reconnect backoff: capped, jittered, and still a number after days of failures."""

from __future__ import annotations

from runtime.backoff import Backoff


def test_delays_double_up_to_the_cap_and_reset() -> None:
    backoff = Backoff(base=0.5, cap=60.0, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 32, 60, 60]
    backoff.reset()
    assert backoff.next_delay() == 0.5
    assert backoff.next_delay(to_cap=True) == 60.0


def test_days_of_failures_stay_at_the_cap() -> None:
    """72 hours of a refused link at one attempt a minute or so: 2**failures outgrows a float."""
    backoff = Backoff(base=0.5, cap=60.0, rand=lambda: 1.0)
    delays = [backoff.next_delay() for _ in range(5000)]
    assert delays[-1] == 60.0
