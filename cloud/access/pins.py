"""Which keypad PINs the cloud accepts, and new ones it makes: pure rules.

A PIN is guessed at the keypad behind a keypad id anyone may learn, and the keypad's lockout
lets through at most 179 wrong entries a week (docs/access.md). With 6 digits that is 179 in a
million a week if PINs were random; people's PINs are not: a handful of patterns (one digit
repeated, runs, a repeated pair, keypad lines, years, well-known lucky numbers) cover a large
share of chosen PINs, and a guesser tries them first. Those are refused, so what is left is
close to random.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable

MIN_DIGITS = 6
MAX_DIGITS = 8
# Lines and shapes on a phone-style keypad (1 2 3 / 4 5 6 / 7 8 9 / 0), and lucky or loving
# numbers (520 "I love you", 1314 "for life") that are among the most chosen PINs in China.
KNOWN = frozenset(
    {
        "147258", "258369", "369258", "147369", "159357", "159753", "357159", "789456",
        "456123", "789123", "147852", "963852", "741852", "852963", "124578", "142536",
        "520520", "521521", "5201314", "1314520", "13145200", "52013140", "168168", "168888",
        "666888", "888666", "518518", "123321", "654456", "147741", "12344321", "98766789",
    }
)  # fmt: skip


def weakness(pin: str) -> str | None:
    """Why `pin` is refused, or None if it is accepted."""
    if not (pin.isascii() and pin.isdigit() and MIN_DIGITS <= len(pin) <= MAX_DIGITS):
        return f"a PIN is {MIN_DIGITS} to {MAX_DIGITS} digits"
    return next((reason for weak, reason in _RULES if weak(pin)), None)


def _run(pin: str) -> bool:
    return {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)} in ({0}, {1}, {9})


def _repeats(pin: str) -> bool:
    for size in range(2, len(pin) // 2 + 1):
        block = pin[:size]
        if block * (len(pin) // size) + block[: len(pin) % size] == pin:
            return True
    return False


def _is_date(pin: str) -> bool:
    """YYYYMMDD, DDMMYYYY, MMDDYYYY, YYMMDD, DDMMYY, MMDDYY: birthdays are guessed first."""

    def day_month(d: str, m: str) -> bool:
        return 1 <= int(d) <= 31 and 1 <= int(m) <= 12

    def year(y: str) -> bool:
        return 1900 <= int(y) <= 2099

    if len(pin) == 8:
        y_first = year(pin[:4]) and (day_month(pin[6:], pin[4:6]) or day_month(pin[4:6], pin[6:]))
        y_last = year(pin[4:]) and (day_month(pin[:2], pin[2:4]) or day_month(pin[2:4], pin[:2]))
        return y_first or y_last
    if len(pin) == 6:
        a, b, c = pin[:2], pin[2:4], pin[4:]
        return day_month(c, b) or day_month(a, b) or day_month(b, a)
    return False


_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (_run, "a PIN of one repeated digit or a run (123456, 987654, 789012) is refused"),
    (_repeats, "a PIN that repeats a few digits (121212, 123123) is refused"),
    (lambda pin: len(set(pin)) <= 2, "a PIN of two different digits (112211) is refused"),
    (KNOWN.__contains__, "a PIN on the keypad's lines or a well-known number is refused"),
    (_is_date, "a PIN that is a date (19900101, 010190, 900101) is refused"),
)


def new_pin(digits: int = MIN_DIGITS) -> str:
    """A random PIN that `weakness` accepts (a reset hands it over once)."""
    if not MIN_DIGITS <= digits <= MAX_DIGITS:
        raise ValueError(f"a PIN is {MIN_DIGITS} to {MAX_DIGITS} digits")
    while True:
        pin = "".join(secrets.choice("0123456789") for _ in range(digits))
        if weakness(pin) is None:
            return pin
