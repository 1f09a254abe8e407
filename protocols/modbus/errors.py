"""Why a meter read failed. Transport libraries' exceptions are mapped to these in one place
(edge/meters/transport.py); everything above that sees only this tree:

    MeterError
    ├── MeterTimeoutError            no reply in time (dead meter, wrong unit id, broken wire)
    ├── MeterFrameError         a reply came but was corrupt: CRC, length or framing
    ├── MeterExceptionCodeError  the meter answered with a Modbus exception code
    └── MeterConnectionError    the port or host could not be opened
"""

from __future__ import annotations

from protocols.errors import AnjuError

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


class MeterError(AnjuError):
    """A read from one meter failed; `unit_id` says which one."""

    def __init__(self, unit_id: int, message: str) -> None:
        super().__init__(f"unit {unit_id}: {message}")
        self.unit_id = unit_id


class MeterTimeoutError(MeterError):
    pass


class MeterFrameError(MeterError):
    pass


class MeterConnectionError(MeterError):
    pass


class MeterExceptionCodeError(MeterError):
    def __init__(self, unit_id: int, function: int, code: int) -> None:
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(unit_id, f"exception {code:#04x} ({name}) to function {function}")
        self.function = function
        self.code = code
