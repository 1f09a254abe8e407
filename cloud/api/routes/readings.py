"""Meter readings as stored from the gateways."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from cloud.api.deps import SessionDep, guard, scoped_meter
from cloud.api.paging import CursorQ, fetch_newest
from cloud.meter_bindings import reading_of
from cloud.models import Reading
from cloud.security.authz import Permission, Principal

router = APIRouter(tags=["readings"])


class ReadingOut(BaseModel):
    point: str
    value: float | None  # None for a text point: its reading is in `text`
    text: str | None = None
    unit: str
    quality: str
    ts: datetime
    gateway_id: str
    seq: int


class ReadingPage(BaseModel):
    meter_id: str
    items: list[ReadingOut]
    next_after: str | None


@router.get("/meters/{meter_id}/readings")
def list_readings(
    meter_id: str,
    me: Annotated[Principal, guard(Permission.METERS_READ, "path")],
    session: SessionDep,
    point: str | None = None,
    after: CursorQ = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ReadingPage:
    """Newest first by (ts, id); page with `after=<next_after>`. A meter with no readings yet
    is empty, as is one bound to no gateway: only its bound gateway's readings are the meter's."""
    meter = scoped_meter(session, me, meter_id)
    query = select(Reading).where(reading_of(meter))
    if point:
        query = query.where(Reading.point == point)
    rows, nxt = fetch_newest(session, query, Reading.ts, Reading.id, after, limit=limit)
    items = [
        ReadingOut(
            point=r.point,
            value=r.value,
            text=r.text,
            unit=r.unit,
            quality=r.quality,
            ts=r.ts,
            gateway_id=r.gateway_id,
            seq=r.seq,
        )
        for r in rows
    ]
    return ReadingPage(meter_id=meter_id, items=items, next_after=nxt)
