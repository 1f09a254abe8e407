"""Meter readings as stored from the gateways."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import select

from cloud.api.deps import SessionDep
from cloud.api.problems import ProblemError
from cloud.models import Reading

router = APIRouter(tags=["readings"])


class ReadingOut(BaseModel):
    point: str
    value: float
    unit: str
    quality: str
    ts: datetime
    gateway_id: str
    seq: int


class ReadingPage(BaseModel):
    meter_id: str
    items: list[ReadingOut]
    next_before: datetime | None


@router.get("/meters/{meter_id}/readings")
def list_readings(
    meter_id: str,
    session: SessionDep,
    point: str | None = None,
    before: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ReadingPage:
    """Newest first; page with `before=<next_before>`."""
    query = select(Reading).where(Reading.meter_id == meter_id)
    if point:
        query = query.where(Reading.point == point)
    if before:
        query = query.where(Reading.ts < before)
    rows = session.scalars(query.order_by(Reading.ts.desc(), Reading.id.desc()).limit(limit)).all()
    if not rows and before is None:
        raise ProblemError(404, f"no readings for meter {meter_id!r}")
    items = [
        ReadingOut(
            point=r.point,
            value=r.value,
            unit=r.unit,
            quality=r.quality,
            ts=r.ts,
            gateway_id=r.gateway_id,
            seq=r.seq,
        )
        for r in rows
    ]
    next_before = rows[-1].ts if len(rows) == limit else None
    return ReadingPage(meter_id=meter_id, items=items, next_before=next_before)
