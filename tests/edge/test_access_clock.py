"""The gateway's NTP check: the C library is looked up once, not at every reading of the clock
(`find_library` runs `ldconfig -p` in a subprocess each time)."""

from __future__ import annotations

import ctypes.util
from collections.abc import Iterator

import pytest

from edge.access import clock


@pytest.fixture
def fresh_libc() -> Iterator[None]:
    clock._libc.cache_clear()
    yield
    clock._libc.cache_clear()


def test_the_c_library_is_found_once(monkeypatch: pytest.MonkeyPatch, fresh_libc: None) -> None:
    found: list[str] = []
    real = ctypes.util.find_library

    def counting(name: str) -> str | None:
        found.append(name)
        return real(name)

    monkeypatch.setattr(ctypes.util, "find_library", counting)
    for _ in range(5):
        assert isinstance(clock.kernel_ntp_synced(), bool)
    assert found == ["c"]


def test_without_a_c_library_the_clock_is_not_synced(
    monkeypatch: pytest.MonkeyPatch, fresh_libc: None
) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert clock.kernel_ntp_synced() is False
