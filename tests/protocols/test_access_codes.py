"""Offline one-time codes: the grid, the candidate count, and brute force against the lockout."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from protocols.access import codes
from protocols.access.clock import Instant
from protocols.access.codes import CodeError, CodeWindow, issue, match, windows_at
from protocols.access.decide import AccessIndex, Code, GuardState, Reason, decide
from tests.access_lists import access_list, door_secret

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SECRET = door_secret("front")


def window(hours: int = 2, counter: int = 0, start: datetime = START) -> CodeWindow:
    return CodeWindow("front", start, start + timedelta(hours=hours), counter)


def test_a_code_has_its_digits_and_depends_on_every_input() -> None:
    code = issue(SECRET, window(), 9)
    assert len(code) == 9
    assert code.isdigit()
    others = {
        issue(SECRET, window(counter=1), 9),
        issue(SECRET, window(hours=4), 9),
        issue(SECRET, window(start=START + timedelta(hours=1)), 9),
        issue(door_secret("garage"), window(), 9),
        issue(SECRET, CodeWindow("garage", START, START + timedelta(hours=2), 0), 9),
    }
    assert code not in others
    assert len(others) == 5
    assert len(issue(SECRET, window(), 10)) == 10


@pytest.mark.parametrize(
    "bad",
    [
        window(start=START + timedelta(minutes=30)),
        window(hours=3),
        window(counter=codes.COUNTERS),
        CodeWindow("front", START, START, 0),
    ],
)
def test_windows_off_the_grid_are_refused(bad: CodeWindow) -> None:
    with pytest.raises(CodeError):
        issue(SECRET, bad, 9)


def test_every_window_holding_an_instant_is_a_candidate() -> None:
    t = START + timedelta(minutes=17)
    found = list(windows_at("front", t))
    assert len(found) == len(set(found)) == codes.CANDIDATES == 1356
    assert all(w.start <= t < w.end for w in found)
    assert window() in found
    assert window(start=START - timedelta(hours=1)) in found


def test_match_finds_the_window_only_inside_it() -> None:
    code = issue(SECRET, window(), 9)
    assert match(SECRET, "front", 9, code, START) == window()
    assert match(SECRET, "front", 9, code, START + timedelta(hours=2) - timedelta(seconds=1))
    assert match(SECRET, "front", 9, code, START + timedelta(hours=2)) is None
    assert match(SECRET, "front", 9, code, START - timedelta(seconds=1)) is None
    assert match(SECRET, "front", 9, code[:-1], START) is None
    assert match(SECRET, "front", 9, "\uff11" * 9, START) is None  # full-width digits


def test_brute_force_is_bounded_by_the_lockout() -> None:
    """An attacker types random codes as fast as the keypad takes them for a week, offline.

    The gateway evaluates at most FREE_TRIES + the doubling steps + one guess per LOCK_CAP; at
    CANDIDATES / 10^9 per guess that is the whole chance of a week (docs/access.md)."""
    index = AccessIndex(access_list())
    state = GuardState()
    state.clock.synced(START, Instant(START, 0.0, "b"))
    rng = random.Random(14)
    mono, evaluated, granted, locked = 0.0, 0, 0, 0
    week = 7 * 86_400.0
    while mono < week:
        guess = f"{rng.randrange(10**9):09d}"
        got = decide(index, "front", Code(guess), Instant(START, mono, "b"), state)
        if got.reason is Reason.LOCKED_OUT:
            locked += 1
        else:
            evaluated += 1
            granted += got.granted
        mono += 10.0  # one entry every ten seconds, day and night
    steps = 6  # 1, 2, 4, 8, 16, 32 minutes before the one-hour cap
    bound = codes.FREE_TRIES + steps + int(week // codes.LOCK_CAP.total_seconds())
    assert evaluated <= bound == 179
    assert locked > 60_000  # every other entry of the week was refused unread
    assert granted == 0
    chance = evaluated * codes.CANDIDATES / 10**9
    assert chance < 3e-4


def test_without_the_lockout_a_guess_hits_with_the_candidate_odds() -> None:
    """With few digits the odds are measurable: the hit rate is CANDIDATES / 10^digits."""
    t = START + timedelta(minutes=5)
    valid = {codes.derive(SECRET, w, 4) for w in windows_at("front", t)}
    # 1,356 candidates fold into at most 10,000 four-digit codes (collisions are fine).
    assert 1000 < len(valid) <= codes.CANDIDATES
    hits = sum(match(SECRET, "front", 4, f"{g:04d}", t) is not None for g in range(150))
    assert hits == sum(f"{g:04d}" in valid for g in range(150))


def test_forgotten_after_a_quiet_day_and_not_reset_by_a_right_entry() -> None:
    keypad = codes.Keypad()
    for _ in range(5):
        keypad.failed(START)
    assert keypad.locked(START)
    assert not keypad.locked(START + timedelta(minutes=1))
    keypad.failed(START + timedelta(minutes=1))
    assert keypad.locked_until() == START + timedelta(minutes=3)
    keypad.failed(START + timedelta(days=2))
    assert keypad.failures == 1
    assert not keypad.locked(START + timedelta(days=2))
