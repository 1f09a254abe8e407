"""Text both halves can store and send: no NUL (PostgreSQL text refuses it) and no lone
surrogate (half of a UTF-16 pair: no UTF-8 encoder takes one). One rule, in three forms:

- `text_fault(text)`: why a string breaks it, or None; what the cloud's API checks every
  query, path, header and JSON string with, and what `check_text` and `printable` build on;
- `CLEAN`: the same rule as a pydantic `pattern` for wire types: pydantic-core fails on a
  string it cannot encode as UTF-8 (a lone surrogate) before the match, and the match refuses
  NUL, all in Rust on the hot path;
- `printable(text, n)`: a string made to follow it (for messages built from what was refused).

tests/test_text_rule.py holds every surface to the same inputs.
"""

from __future__ import annotations

CLEAN = r"^[^\x00]*$"
REPLACEMENT = "\ufffd"


def text_fault(text: str) -> str | None:
    """Why `text` cannot be stored or sent, or None. (`in`, `isascii` and `encode` run in C:
    a regular expression took milliseconds over a photo's base64.)"""
    if "\x00" in text:
        return "holds a NUL character"
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate"
    return None


def check_text(text: str, max_chars: int) -> str:
    """`text` if it keeps the rule and has at most `max_chars` characters, else ValueError
    (pydantic turns that into a validation error)."""
    if len(text) > max_chars:
        raise ValueError(f"a string of {len(text)} characters (at most {max_chars})")
    if text_fault(text) is not None:
        raise ValueError("a string holds NUL or a lone surrogate")
    return text


def printable(text: str, max_chars: int) -> str:
    """`text` cut to `max_chars`, with NUL and lone surrogates made U+FFFD (an exception's
    message, a refused payload)."""
    cut = text[:max_chars]
    if text_fault(cut) is None:
        return cut
    return "".join(REPLACEMENT if _breaks(c) else c for c in cut)


def _breaks(char: str) -> bool:
    return char == "\x00" or "\ud800" <= char <= "\udfff"
