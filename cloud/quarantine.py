"""Where refused input goes: one table, one way in, for ingest and command results alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from cloud.models import Quarantine
from protocols.mqtt.bounds import MAX_DETAIL_CHARS
from protocols.text import printable


@dataclass(frozen=True, slots=True)
class Reject:
    """A message refused before or while storing, kept in quarantine with its reason."""

    topic: str
    reason: str
    detail: str
    payload: bytes


def quarantine(session: Session, rejects: Sequence[Reject], received: datetime) -> None:
    """Keep refused messages as text a database takes (what was refused may hold a NUL)."""
    session.add_all(
        Quarantine(
            received=received,
            topic=printable(r.topic, 300),
            reason=r.reason,
            detail=printable(r.detail, MAX_DETAIL_CHARS),
            payload=printable(r.payload[:65536].decode("utf-8", errors="replace"), 65536),
        )
        for r in rejects
    )
