"""RTU line timing: what a transaction costs on the wire, the bound a poller is measured against."""

from __future__ import annotations

BITS_PER_CHAR = 11  # start + 8 data + parity (or a 2nd stop bit) + stop
READ_REQUEST_BYTES = 8  # unit, function, address (2), count (2), CRC (2)
READ_REPLY_OVERHEAD = 5  # unit, function, byte count, CRC (2)


def char_time_s(baud: int) -> float:
    return BITS_PER_CHAR / baud


def silent_interval_s(baud: int) -> float:
    """t3.5 between frames; the spec fixes it at 1.75 ms above 19200 baud."""
    return 3.5 * char_time_s(baud) if baud <= 19200 else 0.00175


def read_line_time_s(count: int, baud: int) -> float:
    """One FC03/FC04 read of `count` registers: request, reply and the two silent intervals."""
    chars = READ_REQUEST_BYTES + READ_REPLY_OVERHEAD + 2 * count
    return chars * char_time_s(baud) + 2 * silent_interval_s(baud)


def break_even_gap(baud: int) -> int:
    """Unused registers that cost as much line time as one more request: merge across fewer."""
    extra_request = (
        READ_REQUEST_BYTES + READ_REPLY_OVERHEAD + 2 * silent_interval_s(baud) / char_time_s(baud)
    )
    return int(extra_request // 2)
