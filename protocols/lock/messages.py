"""What the frames carry: commands to the lock, its answers and its events.

A side accepts a frame only if it authenticates and its counter is above the last one it
accepted from the other side: a replayed or reordered frame is refused (LockReplayError)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from protocols.lock.errors import LockFrameError, LockReplayError
from protocols.lock.frames import Direction, Opcode, open_frame, peek, seal

MAX_BATTERY = 100
LOW_BATTERY = 20  # percent: the lock reports LOW_BATTERY when it falls to this
MAX_HOLD_DS = 600  # an unlock holds the bolt at most 60 s (in tenths of a second)
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class Bolt(IntEnum):
    LOCKED = 0
    UNLOCKED = 1
    JAMMED = 2


class Result(IntEnum):
    OK = 0
    STALE = 1  # the command's counter is not above the lock's last; carries that counter
    JAMMED = 2
    BAD_REQUEST = 3


class EventKind(IntEnum):
    UNLOCKED = 1
    OPENED = 2
    CLOSED = 3
    LOCKED = 4
    JAMMED = 5
    FORCED_OPEN = 6  # the door opened while the bolt was locked
    HELD_OPEN = 7  # open past the lock's limit; value = seconds open
    LOW_BATTERY = 8
    TAMPER = 9


@dataclass(frozen=True, slots=True)
class Status:
    bolt: Bolt
    door_open: bool
    battery: int  # percent

    def __post_init__(self) -> None:
        if not 0 <= self.battery <= MAX_BATTERY:
            raise LockFrameError(f"battery {self.battery}% outside 0..{MAX_BATTERY}")

    def encode(self) -> bytes:
        return bytes([self.bolt | (int(self.door_open) << 2), self.battery])

    @classmethod
    def decode(cls, raw: bytes) -> Status:
        state, battery = raw
        if state & ~0b111:
            raise LockFrameError(f"reserved state bits set: {state:#04x}")
        try:
            bolt = Bolt(state & 0b11)
        except ValueError:
            raise LockFrameError(f"unknown bolt state {state & 0b11}") from None
        return cls(bolt, bool(state & 0b100), battery)


@dataclass(frozen=True, slots=True)
class UnlockCommand:
    hold_ds: int  # tenths of a second the bolt stays open

    def __post_init__(self) -> None:
        if not 1 <= self.hold_ds <= MAX_HOLD_DS:
            raise LockFrameError(f"hold {self.hold_ds} ds outside 1..{MAX_HOLD_DS}")


@dataclass(frozen=True, slots=True)
class LockCommand:
    pass


@dataclass(frozen=True, slots=True)
class StatusCommand:
    pass


Command = UnlockCommand | LockCommand | StatusCommand


@dataclass(frozen=True, slots=True)
class Answer:
    result: Result
    status: Status | None = None  # with OK and JAMMED
    last_counter: int = 0  # with STALE: the last command counter the lock accepted

    def __post_init__(self) -> None:
        wants_status = self.result in (Result.OK, Result.JAMMED)
        if wants_status != (self.status is not None):
            need = "needs" if wants_status else "has no"
            raise LockFrameError(f"a {self.result.name} answer {need} status")


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    status: Status
    value: int = 0  # HELD_OPEN: seconds open

    def __post_init__(self) -> None:
        if not 0 <= self.value <= 0xFFFF:
            raise LockFrameError(f"event value {self.value} outside 0..65535")


# ---- commands (gateway → lock) -------------------------------------------------------------


def encode_command(key: bytes, counter: int, command: Command) -> bytes:
    match command:
        case UnlockCommand(hold_ds=hold):
            return seal(key, Direction.TO_LOCK, counter, Opcode.UNLOCK, _U16.pack(hold))
        case LockCommand():
            return seal(key, Direction.TO_LOCK, counter, Opcode.LOCK, b"")
        case StatusCommand():
            return seal(key, Direction.TO_LOCK, counter, Opcode.STATUS, b"")


def decode_command(key: bytes, data: bytes, *, last_counter: int) -> tuple[int, Command]:
    """(counter, command). The lock answers a LockReplayError with a STALE answer."""
    frame = open_frame(key, Direction.TO_LOCK, data)
    if frame.counter <= last_counter:
        raise LockReplayError(frame.counter, last_counter)
    match frame.opcode:
        case Opcode.UNLOCK:
            _expect(frame.payload, 2)
            return frame.counter, UnlockCommand(_U16.unpack(frame.payload)[0])
        case Opcode.LOCK:
            _expect(frame.payload, 0)
            return frame.counter, LockCommand()
        case _:
            _expect(frame.payload, 0)
            return frame.counter, StatusCommand()


# ---- answers and events (lock → gateway) ---------------------------------------------------


def encode_answer(key: bytes, counter: int, reply_to: int, answer: Answer) -> bytes:
    payload = bytes([answer.result])
    if answer.status is not None:
        payload += answer.status.encode()
    elif answer.result is Result.STALE:
        payload += _U32.pack(answer.last_counter)
    return seal(key, Direction.TO_GATEWAY, counter, Opcode.ANSWER, payload, bound=reply_to)


def encode_event(key: bytes, counter: int, event: Event) -> bytes:
    payload = bytes([event.kind]) + event.status.encode() + _U16.pack(event.value)
    return seal(key, Direction.TO_GATEWAY, counter, Opcode.EVENT, payload)


def decode_notification(
    key: bytes, data: bytes, *, last_counter: int, reply_to: int | None
) -> tuple[int, Answer | Event]:
    """(counter, message). An answer must answer `reply_to` (the command waiting, if any)."""
    _, opcode = peek(Direction.TO_GATEWAY, data)
    if opcode is Opcode.ANSWER and reply_to is None:
        raise LockFrameError("an answer while no command waits")
    bound = reply_to if opcode is Opcode.ANSWER and reply_to is not None else 0
    frame = open_frame(key, Direction.TO_GATEWAY, data, bound=bound)
    if frame.counter <= last_counter:
        raise LockReplayError(frame.counter, last_counter)
    raw = frame.payload
    if frame.opcode is Opcode.EVENT:
        _expect(raw, 5)
        try:
            kind = EventKind(raw[0])
        except ValueError:
            raise LockFrameError(f"unknown event {raw[0]}") from None
        return frame.counter, Event(kind, Status.decode(raw[1:3]), _U16.unpack(raw[3:])[0])
    if not raw:
        raise LockFrameError("empty answer")
    try:
        result = Result(raw[0])
    except ValueError:
        raise LockFrameError(f"unknown result {raw[0]}") from None
    if result in (Result.OK, Result.JAMMED):
        _expect(raw, 3)
        return frame.counter, Answer(result, Status.decode(raw[1:]))
    if result is Result.STALE:
        _expect(raw, 5)
        return frame.counter, Answer(result, last_counter=_U32.unpack(raw[1:])[0])
    _expect(raw, 1)
    return frame.counter, Answer(result)


def _expect(payload: bytes, size: int) -> None:
    if len(payload) != size:
        raise LockFrameError(f"payload of {len(payload)} bytes where {size} belong")
