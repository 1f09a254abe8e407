"""Why talking to a lock failed. The frame codec raises the first four; the edge driver maps
bleak's exceptions to the last two in one place (edge/door/ble/link.py). Above that, code sees
only this tree:

    LockError
    ├── LockFrameError        bytes that are no frame: truncated, oversized, unknown version,
    │                         opcode or field value
    ├── LockAuthError         the tag does not verify: wrong key, or the bytes were altered
    ├── LockReplayError       authentic, but its counter is not above the last one accepted
    ├── LockRefusedError      the lock answered and refused (jammed, stale counter, bad request)
    ├── LockTimeoutError      no authentic answer in time
    └── LockUnreachableError  no connection: out of range, adapter busy or gone, link dropped
"""

from __future__ import annotations

from protocols.errors import AnjuError


class LockError(AnjuError):
    """A command to a lock failed, or bytes from one were refused."""


class LockFrameError(LockError):
    pass


class LockAuthError(LockError):
    pass


class LockReplayError(LockError):
    def __init__(self, counter: int, last: int) -> None:
        super().__init__(f"counter {counter} is not above the last accepted ({last})")
        self.counter = counter
        self.last = last


class LockRefusedError(LockError):
    def __init__(self, result: str, message: str) -> None:
        super().__init__(message)
        self.result = result


class LockTimeoutError(LockError):
    pass


class LockUnreachableError(LockError):
    pass
