"""Invoice lines as the billing rules compute them: typed values, before any row exists."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from cloud.models import LineKind


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """One line of a bill (money in fen). `meter` is the line's natural key beside lease, kind
    and start ("" for rent); `due` is None for a line that joins its lease's latest bill."""

    lease_id: int
    kind: LineKind
    start: date
    end: date
    amount: int
    description: str
    meter: str = ""
    utility: str | None = None
    previous_reading: Decimal | None = None
    current_reading: Decimal | None = None
    quantity: Decimal | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    due: date | None = None
