"""Photos of a fault: what we accept, told by the bytes themselves (a client's Content-Type is
a claim, not a fact), and how much."""

from __future__ import annotations

MAX_BYTES = 2 * 1024 * 1024
MAX_PER_ORDER = 6
MIN_BYTES = 16  # shorter than any real image header


class PhotoError(ValueError):
    pass


def sniff(data: bytes) -> str:
    """The image type of `data` by its magic bytes: JPEG, PNG or WebP; anything else refused."""
    if len(data) > MAX_BYTES:
        raise PhotoError(f"photo larger than {MAX_BYTES} bytes")
    if len(data) < MIN_BYTES:
        raise PhotoError("photo too short to be an image")
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise PhotoError("not a JPEG, PNG or WebP image")
