"""Alarms as people see them: listed per property, acknowledged, resolved by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.deps import NowDep, SessionDep, guard, scoped_get
from cloud.api.paging import CursorQ, PathId, fetch_newest
from cloud.api.problems import ProblemError
from cloud.api.scope import PropertyQ, scope_filter
from cloud.maintenance import alarms
from cloud.models import Alarm, AlarmState
from cloud.security.authz import Permission, Principal

router = APIRouter(tags=["alarms"])
P = Permission


class AlarmOut(BaseModel):
    id: int
    property_id: int | None
    unit_id: int | None
    kind: str
    key: str
    subject: str
    severity: str
    state: AlarmState
    detail: dict[str, Any]
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    resolved_at: datetime | None
    resolved_by: int | None
    work_order_id: int | None

    @classmethod
    def of(cls, a: Alarm) -> AlarmOut:
        return cls(**{k: getattr(a, k) for k in cls.model_fields})


class AlarmPage(BaseModel):
    items: list[AlarmOut]
    next_after: str | None


@router.get("/alarms")
def list_alarms(
    me: Annotated[Principal, guard(P.ALARMS_READ, "list")],
    session: SessionDep,
    property_id: PropertyQ = None,
    state: AlarmState | None = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    after: CursorQ = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AlarmPage:
    """Newest first by (raised_at, id); `state=active` for what needs attention."""
    query = select(Alarm).where(scope_filter(me, Alarm.property_id, property_id))
    if state is not None:
        query = query.where(Alarm.state == state)
    if kind is not None:
        query = query.where(Alarm.kind == kind)
    rows, nxt = fetch_newest(session, query, Alarm.raised_at, Alarm.id, after, limit=limit)
    return AlarmPage(items=[AlarmOut.of(a) for a in rows], next_after=nxt)


@router.get("/alarms/{alarm_id}")
def get_alarm(
    alarm_id: PathId,
    me: Annotated[Principal, guard(P.ALARMS_READ, "path")],
    session: SessionDep,
) -> AlarmOut:
    return AlarmOut.of(scoped_get(session, me, Alarm, alarm_id))


ManagePath = Annotated[Principal, guard(P.ALARMS_MANAGE, "path")]


@router.post("/alarms/{alarm_id}/acknowledgement")
def acknowledge(alarm_id: PathId, me: ManagePath, session: SessionDep, now: NowDep) -> AlarmOut:
    """Someone is on it: it stays open until resolved, by hand or when its condition clears."""
    return act(session, me, alarm_id, lambda a: alarms.acknowledge(session, a, now=now, who=me))


@router.post("/alarms/{alarm_id}/resolution")
def resolve(alarm_id: PathId, me: ManagePath, session: SessionDep, now: NowDep) -> AlarmOut:
    """Closed by hand; if the condition persists, the next evaluation raises a new alarm."""
    return act(session, me, alarm_id, lambda a: alarms.close(session, a, now=now, who=me))


def act(
    session: Session, me: Principal, alarm_id: int, change: Callable[[Alarm], None]
) -> AlarmOut:
    alarm = scoped_get(session, me, Alarm, alarm_id)
    try:
        change(alarm)
    except alarms.AlarmError as exc:
        raise ProblemError(409, str(exc)) from None
    session.commit()
    return AlarmOut.of(alarm)
