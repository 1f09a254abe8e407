"""Secret keys kept in files: raw bytes, or hex digits (what an installer can type or paste)."""

from __future__ import annotations

from pathlib import Path

from protocols.errors import ConfigError


def read_key(path: Path, size: int, what: str) -> bytes:
    """`size` raw bytes, or twice as many hex digits (with or without a trailing newline)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}") from None
    if len(data) == size:
        return data
    text = data.strip()
    if len(text) == 2 * size:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise ConfigError(f"{what} {path}: expected {size} random bytes or {2 * size} hex digits")
