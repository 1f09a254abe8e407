"""Authenticated frames: `version | counter | opcode | sealed payload | tag`.

    version  1 byte   (1)
    counter  4 bytes  big-endian, strictly increasing per direction, never 0
    opcode   1 byte
    payload  0..6 bytes, encrypted
    tag      8 bytes  AES-128-CCM over the payload, the 6-byte header and the bound counter

The nonce is `direction | counter | 8 zero bytes`: each side numbers its own frames, so a
(direction, counter) pair is never used twice under one key. An answer is bound to the command
it answers (that command's counter goes into the authenticated data without travelling), so an
old answer cannot stand in for a new one; events are bound to 0.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from protocols.lock.errors import LockAuthError, LockFrameError
from protocols.lock.gatt import MAX_FRAME

VERSION = 1
KEY_BYTES = 16
TAG_BYTES = 8
MAX_COUNTER = 2**32 - 1
_HEADER = struct.Struct(">BIB")
_BOUND = struct.Struct(">I")
MIN_FRAME = _HEADER.size + TAG_BYTES
MAX_PAYLOAD = MAX_FRAME - MIN_FRAME


class Direction(IntEnum):
    TO_LOCK = 1
    TO_GATEWAY = 2


class Opcode(IntEnum):
    UNLOCK = 0x01
    LOCK = 0x02
    STATUS = 0x03
    ANSWER = 0x81
    EVENT = 0x82


OPCODES = {
    Direction.TO_LOCK: frozenset({Opcode.UNLOCK, Opcode.LOCK, Opcode.STATUS}),
    Direction.TO_GATEWAY: frozenset({Opcode.ANSWER, Opcode.EVENT}),
}


@dataclass(frozen=True, slots=True)
class Frame:
    counter: int
    opcode: Opcode
    payload: bytes


def check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise LockFrameError(f"a lock key is {KEY_BYTES} bytes")
    return key


def _check_counter(counter: int) -> int:
    if not 1 <= counter <= MAX_COUNTER:
        raise LockFrameError(f"counter {counter} outside 1..{MAX_COUNTER}")
    return counter


def _nonce(direction: Direction, counter: int) -> bytes:
    return bytes([direction]) + counter.to_bytes(4, "big") + bytes(8)


def seal(
    key: bytes,
    direction: Direction,
    counter: int,
    opcode: Opcode,
    payload: bytes,
    *,
    bound: int = 0,
) -> bytes:
    if opcode not in OPCODES[direction]:
        raise LockFrameError(f"opcode {opcode:#04x} does not travel {direction.name}")
    if len(payload) > MAX_PAYLOAD:
        raise LockFrameError(f"payload of {len(payload)} bytes (at most {MAX_PAYLOAD})")
    header = _HEADER.pack(VERSION, _check_counter(counter), opcode)
    aad = header + _BOUND.pack(bound)
    sealed = AESCCM(check_key(key), tag_length=TAG_BYTES).encrypt(
        _nonce(direction, counter), payload, aad
    )
    return header + sealed


def peek(direction: Direction, data: bytes) -> tuple[int, Opcode]:
    """The counter and opcode of a frame, not yet authenticated: only to choose how to open it."""
    if not isinstance(data, bytes | bytearray):
        raise LockFrameError("a frame is bytes")
    if len(data) < MIN_FRAME:
        raise LockFrameError(f"truncated frame of {len(data)} bytes (at least {MIN_FRAME})")
    if len(data) > MAX_FRAME:
        raise LockFrameError(f"oversized frame of {len(data)} bytes (at most {MAX_FRAME})")
    version, counter, raw_opcode = _HEADER.unpack_from(data)
    if version != VERSION:
        raise LockFrameError(f"unknown frame version {version}")
    if counter == 0:
        raise LockFrameError("counter 0 is never sent")
    try:
        opcode = Opcode(raw_opcode)
    except ValueError:
        raise LockFrameError(f"unknown opcode {raw_opcode:#04x}") from None
    if opcode not in OPCODES[direction]:
        raise LockFrameError(f"opcode {opcode:#04x} does not travel {direction.name}")
    return counter, opcode


def open_frame(key: bytes, direction: Direction, data: bytes, *, bound: int = 0) -> Frame:
    """The authenticated frame; LockFrameError or LockAuthError for anything else."""
    counter, opcode = peek(direction, data)
    raw = bytes(data)
    header = raw[: _HEADER.size]
    try:
        payload = AESCCM(check_key(key), tag_length=TAG_BYTES).decrypt(
            _nonce(direction, counter), raw[_HEADER.size :], header + _BOUND.pack(bound)
        )
    except InvalidTag:
        raise LockAuthError("frame does not authenticate: wrong key, or altered") from None
    return Frame(counter, opcode, payload)
