"""Writing audit events. Part of the caller's transaction, so the record and the act commit
together; denied attempts are written in their own transaction by the caller."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cloud.models import AuditEvent
from cloud.security.authz import Principal


def record(
    session: Session,
    who: Principal | None,
    action: str,
    now: datetime,
    *,
    target_type: str = "",
    target_id: object = "",
    property_id: int | None = None,
    outcome: str = "ok",
    ip: str = "",
    username: str = "",
    user_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        ts=now,
        user_id=who.user_id if who else user_id,
        username=who.username if who else username,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        property_id=property_id,
        ip=who.ip if who else ip,
        outcome=outcome,
        detail=json.dumps(detail or {}, ensure_ascii=False, sort_keys=True),
    )
    session.add(event)
    return event


def kind_of(record: object) -> str:
    """A record's kind as audit targets and 404s name it: its table name, singular."""
    return str(getattr(record, "__tablename__", "record")).removesuffix("s")


def about(
    session: Session,
    who: Principal,
    action: str,
    now: datetime,
    target: Any,
    *,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """An event about one record: its kind, id and property come from the row."""
    return record(
        session,
        who,
        action,
        now,
        target_type=kind_of(target),
        target_id=target.id,
        property_id=getattr(target, "property_id", None),
        outcome=outcome,
        detail=detail,
    )
