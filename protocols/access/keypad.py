"""What a door keypad sends, as entries for `decide`: bytes in, `Pin` / `Code` out.

A serial keypad sends the keys pressed as ASCII: digits, `*` and `#` (enter). Some send each
key as it is pressed, others the whole entry as a line when enter is pressed; both end an entry
with `#`, CR or LF, so one reader takes either. An entry with one `*` is a keypad id and a PIN
(`1203*246810`: a tenant's, a staff member's or a visitor pass's), an entry of digits alone an
offline one-time code. Every other non-empty entry (`**`, `12*34*5`) is still presented, as a
code that matches nothing, so it counts towards the keypad's lockout like any wrong entry.

Line noise (a byte outside the keypad's alphabet) or an entry longer than `MAX_ENTRY` keys
spoils the entry: it is dropped and counted, and the keypad's answer to it is a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.access.decide import Code, Pin

# The longest entry a keypad can mean: a keypad id (8 digits), `*` and a PIN (12) fit.
MAX_ENTRY = 24
KEYS = frozenset(b"0123456789*")
ENDS = frozenset(b"#\r\n")

Entry = Pin | Code

# What the gateway answers the keypad with, one line per entry (the keypad beeps and lights).
# The answer never says why an entry was refused: an unknown keypad id and a wrong PIN look
# the same to whoever is guessing; only the lockout is told, so a tenant knows to wait.
ANSWER_OPEN = b"OK\r\n"
ANSWER_REFUSED = b"NO\r\n"
ANSWER_WAIT = b"WAIT\r\n"


def entry(keys: str) -> Entry:
    """The entry `keys` (without its `#`) stands for."""
    keypad_id, star, pin = keys.partition("*")
    if star and "*" not in pin:
        return Pin(keypad_id, pin)
    return Code(keys)


@dataclass
class EntryReader:
    """Assembles entries from the bytes the keypad sends, however they are split."""

    spoiled: int = 0  # entries dropped for noise or length
    _keys: bytearray | None = None
    _bad: bool = False

    def feed(self, data: bytes) -> list[Entry | None]:
        """The entries ended in `data`, in order; None for a spoiled one (answer: refused)."""
        out: list[Entry | None] = []
        for byte in data:
            if byte in ENDS:
                if self._bad:
                    self.spoiled += 1
                    out.append(None)
                elif self._keys:
                    out.append(entry(self._keys.decode("ascii")))
                self._keys, self._bad = None, False
                continue
            if self._keys is None:
                self._keys = bytearray()
            if byte not in KEYS or len(self._keys) >= MAX_ENTRY:
                self._bad = True
            elif not self._bad:
                self._keys.append(byte)
        return out
