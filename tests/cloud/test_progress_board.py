"""The process's progress board stays bounded: finished actions make room, oldest first, and an
action still running is never dropped to make it."""

from __future__ import annotations

import pytest

from cloud.progress import DONE, Board, Progress

pytestmark = pytest.mark.timeout(10)


def finished(n: int) -> Progress:
    return Progress(DONE, n, n, finished=True)


def test_the_oldest_finished_action_makes_room() -> None:
    board = Board(max_keys=3)
    for key in ("a", "b", "c"):
        board.set(key, finished(1))
    board.set("a", finished(2))  # set again: now the most recent
    board.set("d", finished(1))
    assert board.get("b") is None
    assert [board.get(k) for k in ("a", "c", "d")] == [finished(2), finished(1), finished(1)]


def test_a_running_action_is_kept_over_the_bound() -> None:
    board = Board(max_keys=2)
    running = Progress("rent", 3, 10)
    board.set("run", running)
    board.set("x", finished(1))
    board.set("y", finished(1))
    assert board.get("run") == running
    assert board.get("x") is None
    board.set("z", Progress("rent", 0, 5))
    board.set("w", Progress("rent", 0, 5))  # nothing finished to drop: all kept
    assert {k for k in ("run", "y", "z", "w") if board.get(k) is not None} == {"run", "z", "w"}


def test_many_finished_actions_stay_within_the_bound() -> None:
    board = Board(max_keys=50)
    for n in range(1000):
        with board.track(f"billing-run:{n}:2026-03") as report:
            report("rent", 1, 1)
    assert sum(board.get(f"billing-run:{n}:2026-03") is not None for n in range(1000)) == 50
    assert board.get("billing-run:999:2026-03") == finished(1)
