"""The bounds of every value on the wire, defined once for both halves.

The gateway builds what it sends with these types and the cloud validates what it receives with
the same ones, so a gateway cannot produce what the cloud refuses, and nothing the cloud takes
can break its columns or readers: integers fit a signed 64-bit column, floats are finite and of
a size a meter can mean, strings hold no NUL (PostgreSQL text refuses it) and no lone surrogate
(no UTF-8 encoder takes one), and free-form JSON (an event's data, a command's answer) keeps to
the same rules with a bounded depth.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

# The text rule lives in protocols/text.py (the cloud's API checks with it too); its names
# stay importable from here (see __all__).
from protocols.text import CLEAN, check_text, printable

__all__ = [
    "CLEAN", "MAX_DATA_DEPTH", "MAX_DETAIL_CHARS", "MAX_INT64", "MAX_NAME_CHARS",
    "MAX_TEXT_CHARS", "MAX_VALUE", "MIN_INT64", "Count", "Data", "Detail", "Name", "Seq",
    "Text", "Value", "check_data", "check_text", "printable", "value_fits",
]  # fmt: skip

# A signed 64-bit column on both sides (SQLite INTEGER, PostgreSQL BIGINT).
MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)
# |a reading's value|: far beyond any register's meaning, and still exact to 1/8 in a double.
MAX_VALUE = 1e15
MAX_NAME_CHARS = 64  # ids and names: meters, points, event types, keys of free-form data
MAX_TEXT_CHARS = 256  # a string point is at most 125 registers: 250 characters
MAX_DETAIL_CHARS = 1024  # a sentence for people (why a command failed), strings of data
MAX_DATA_DEPTH = 4  # nesting of lists and objects inside free-form data

Seq = Annotated[int, Field(ge=1, le=MAX_INT64)]
# A seq or nothing yet (0): marks, spans, epoch starts; and counts of records.
Count = Annotated[int, Field(ge=0, le=MAX_INT64)]
Value = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_VALUE, le=MAX_VALUE)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS, pattern=CLEAN)]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS, pattern=CLEAN)]
Detail = Annotated[str, Field(max_length=MAX_DETAIL_CHARS, pattern=CLEAN)]


def value_fits(value: float) -> bool:
    """Whether a reading's value may travel (NaN and infinities do not)."""
    return abs(value) <= MAX_VALUE


def check_data(value: Any, depth: int = 0) -> Any:
    """Raise ValueError unless `value` is JSON within the wire's bounds (see the module).

    ValueError for a wrong type too: pydantic turns only that into a validation error."""
    if isinstance(value, dict | list):
        if depth >= MAX_DATA_DEPTH:
            raise ValueError(f"data nested deeper than {MAX_DATA_DEPTH}")
        for key in value if isinstance(value, dict) else ():
            if not isinstance(key, str):
                raise ValueError("a key that is not a string")  # noqa: TRY004 - see above
            check_text(key, MAX_NAME_CHARS)
        for item in value.values() if isinstance(value, dict) else value:
            check_data(item, depth + 1)
    elif isinstance(value, str):
        check_text(value, MAX_DETAIL_CHARS)
    elif isinstance(value, float):
        if not value_fits(value):
            raise ValueError(f"a number beyond ±{MAX_VALUE:g}, or not finite")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not MIN_INT64 <= value <= MAX_INT64:
            raise ValueError("an integer beyond 64 bits")
    elif value is not None and not isinstance(value, bool):
        raise ValueError(f"{type(value).__name__} is not JSON")
    return value


Data = Annotated[dict[str, Any], AfterValidator(check_data)]
