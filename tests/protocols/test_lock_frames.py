"""The lock protocol on bytes alone: round trips, the frame layout, and every refusal."""

from __future__ import annotations

import contextlib
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.lock.errors import LockAuthError, LockError, LockFrameError, LockReplayError
from protocols.lock.frames import MAX_COUNTER, Direction, Opcode, seal
from protocols.lock.gatt import MAX_FRAME
from protocols.lock.messages import (
    Answer,
    Bolt,
    Event,
    EventKind,
    LockCommand,
    Result,
    Status,
    StatusCommand,
    UnlockCommand,
    decode_command,
    decode_notification,
    encode_answer,
    encode_command,
    encode_event,
)

KEY = bytes(range(16))
OTHER = bytes(range(1, 17))
STATUS = Status(Bolt.UNLOCKED, door_open=True, battery=87)


def test_command_layout_matches_the_documented_bytes() -> None:
    """Built with struct and AESCCM directly: version, counter, opcode, sealed payload, tag."""
    frame = encode_command(KEY, 7, UnlockCommand(50))
    header = struct.pack(">BIB", 1, 7, 0x01)
    nonce = b"\x01" + (7).to_bytes(4, "big") + bytes(8)
    expected = header + AESCCM(KEY, tag_length=8).encrypt(
        nonce, struct.pack(">H", 50), header + bytes(4)
    )
    assert frame == expected
    assert len(frame) == 6 + 2 + 8


def test_round_trips() -> None:
    for command in (UnlockCommand(1), UnlockCommand(600), LockCommand(), StatusCommand()):
        assert decode_command(KEY, encode_command(KEY, 3, command), last_counter=2) == (3, command)
    for answer in (
        Answer(Result.OK, STATUS),
        Answer(Result.JAMMED, Status(Bolt.JAMMED, door_open=False, battery=0)),
        Answer(Result.STALE, last_counter=MAX_COUNTER),
        Answer(Result.BAD_REQUEST),
    ):
        data = encode_answer(KEY, 9, 3, answer)
        assert len(data) <= MAX_FRAME
        assert decode_notification(KEY, data, last_counter=8, reply_to=3) == (9, answer)
    event = Event(EventKind.HELD_OPEN, STATUS, value=65535)
    data = encode_event(KEY, 10, event)
    assert len(data) <= MAX_FRAME
    assert decode_notification(KEY, data, last_counter=9, reply_to=None) == (10, event)


def test_replay_and_reorder_are_refused() -> None:
    first, second = encode_command(KEY, 5, UnlockCommand(10)), encode_command(KEY, 6, LockCommand())
    last = 0
    last, _ = decode_command(KEY, first, last_counter=last)
    last, _ = decode_command(KEY, second, last_counter=last)
    with pytest.raises(LockReplayError) as replay:
        decode_command(KEY, first, last_counter=last)  # the old unlock, replayed
    assert (replay.value.counter, replay.value.last) == (5, 6)
    with pytest.raises(LockReplayError):
        decode_command(KEY, second, last_counter=last)  # the same frame twice
    # events out of order: the older one arrives after the newer
    e1 = encode_event(KEY, 20, Event(EventKind.OPENED, STATUS))
    e2 = encode_event(KEY, 21, Event(EventKind.CLOSED, STATUS))
    seen, _ = decode_notification(KEY, e2, last_counter=19, reply_to=None)
    with pytest.raises(LockReplayError):
        decode_notification(KEY, e1, last_counter=seen, reply_to=None)


def test_an_answer_is_bound_to_its_command() -> None:
    """An old OK answer does not stand in for the answer to a newer command."""
    old = encode_answer(KEY, 30, 4, Answer(Result.OK, STATUS))
    with pytest.raises(LockAuthError):
        decode_notification(KEY, old, last_counter=0, reply_to=5)
    with pytest.raises(LockFrameError, match="no command waits"):
        decode_notification(KEY, old, last_counter=0, reply_to=None)


def test_wrong_key_and_altered_bytes() -> None:
    frame = encode_command(KEY, 1, UnlockCommand(50))
    with pytest.raises(LockAuthError):
        decode_command(OTHER, frame, last_counter=0)
    for i in range(len(frame)):
        altered = bytearray(frame)
        altered[i] ^= 0x01
        with pytest.raises((LockAuthError, LockFrameError)):
            decode_command(KEY, bytes(altered), last_counter=0)
    # a counter moved forward by an attacker does not authenticate
    moved = frame[:1] + (1000).to_bytes(4, "big") + frame[5:]
    with pytest.raises(LockAuthError):
        decode_command(KEY, moved, last_counter=0)


def test_a_frame_for_one_direction_is_refused_in_the_other() -> None:
    """The lock's own event reflected back at it is no command (and vice versa)."""
    event = encode_event(KEY, 3, Event(EventKind.LOCKED, STATUS))
    with pytest.raises(LockFrameError):
        decode_command(KEY, event, last_counter=0)
    command = encode_command(KEY, 3, LockCommand())
    with pytest.raises(LockFrameError):
        decode_notification(KEY, command, last_counter=0, reply_to=3)


def test_truncated_oversized_and_malformed() -> None:
    frame = encode_command(KEY, 1, StatusCommand())
    for cut in range(len(frame)):
        with pytest.raises(LockFrameError, match="truncated"):
            decode_command(KEY, frame[:cut], last_counter=0)
    with pytest.raises(LockFrameError, match="oversized"):
        decode_command(KEY, frame + bytes(MAX_FRAME), last_counter=0)
    with pytest.raises(LockFrameError, match="version"):
        decode_command(KEY, b"\x02" + frame[1:], last_counter=0)
    with pytest.raises(LockFrameError, match="counter 0"):
        decode_command(KEY, frame[:1] + bytes(4) + frame[5:], last_counter=0)
    with pytest.raises(LockFrameError, match="opcode"):
        decode_command(KEY, frame[:5] + b"\x7f" + frame[6:], last_counter=0)
    # authentic frames whose payload breaks the rules: a sender with the key gets no pass
    bad_payloads = [
        (Opcode.UNLOCK, b"\x00"),  # short
        (Opcode.UNLOCK, b"\x00\x00"),  # hold 0
        (Opcode.UNLOCK, struct.pack(">H", 601)),  # hold beyond 60 s
        (Opcode.LOCK, b"\x00"),
    ]
    for opcode, payload in bad_payloads:
        with pytest.raises(LockFrameError):
            decode_command(KEY, seal(KEY, Direction.TO_LOCK, 1, opcode, payload), last_counter=0)
    bad_answers = [b"", b"\x00\x01", b"\x00\x08\x32", b"\x00\x00\x65", b"\x09", b"\x01\x00"]
    for payload in bad_answers:
        data = seal(KEY, Direction.TO_GATEWAY, 1, Opcode.ANSWER, payload, bound=1)
        with pytest.raises(LockFrameError):
            decode_notification(KEY, data, last_counter=0, reply_to=1)
    data = seal(KEY, Direction.TO_GATEWAY, 1, Opcode.EVENT, b"\x63\x00\x10\x00\x00")
    with pytest.raises(LockFrameError, match="unknown event"):
        decode_notification(KEY, data, last_counter=0, reply_to=None)


def test_bounds_when_building() -> None:
    with pytest.raises(LockFrameError):
        encode_command(KEY, 0, LockCommand())
    with pytest.raises(LockFrameError):
        encode_command(KEY, MAX_COUNTER + 1, LockCommand())
    with pytest.raises(LockFrameError):
        encode_command(KEY[:15], 1, LockCommand())
    with pytest.raises(LockFrameError):
        UnlockCommand(0)
    with pytest.raises(LockFrameError):
        Status(Bolt.LOCKED, door_open=False, battery=101)
    with pytest.raises(LockFrameError):
        Answer(Result.OK)
    with pytest.raises(LockFrameError):
        seal(KEY, Direction.TO_LOCK, 1, Opcode.ANSWER, b"")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.integers(0, MAX_COUNTER), st.none() | st.integers(0, 99))
def test_hostile_bytes_raise_only_lock_errors(data: bytes, last: int, reply_to: int | None) -> None:
    for decode in (
        lambda: decode_command(KEY, data, last_counter=last),
        lambda: decode_notification(KEY, data, last_counter=last, reply_to=reply_to),
    ):
        with contextlib.suppress(LockError):
            decode()


@settings(max_examples=100, deadline=None)
@given(st.integers(1, MAX_COUNTER), st.integers(1, 600), st.integers(0, 39), st.integers(0, 7))
def test_any_single_bit_flip_is_refused(counter: int, hold: int, byte: int, bit: int) -> None:
    frame = bytearray(encode_command(KEY, counter, UnlockCommand(hold)))
    frame[byte % len(frame)] ^= 1 << bit
    with pytest.raises((LockAuthError, LockFrameError)):
        decode_command(KEY, bytes(frame), last_counter=0)
