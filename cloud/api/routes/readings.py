"""Meter readings as stored from the gateways, and what they tell: each meter's health by the
alarm rules' thresholds, and its (and its unit's) usage per local day by billing's rules."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from cloud.api.deps import NowDep, SessionDep, guard, scoped_meter
from cloud.api.paging import CursorQ, IdQ, KeyPage, KeyPageQ, fetch_newest
from cloud.api.routes.portfolio import MeterOut, list_meters
from cloud.api.scope import PropertyQ
from cloud.billing.bounds import FIRST_DAY, LAST_DAY
from cloud.billing.service import daily
from cloud.meter_bindings import reading_of
from cloud.meter_health import ALARM_RULES, Health, health
from cloud.models import Reading, Utility
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


class MeterHealthOut(MeterOut):
    state: Health
    last_reading: datetime | None
    bad_readings: int  # in the alarm rule's window (an hour)


@router.get("/meter-health")
def meter_health(
    me: Annotated[Principal, guard(Permission.METERS_READ, "list")],
    session: SessionDep,
    now: NowDep,
    page: KeyPageQ,
    property_id: PropertyQ = None,
    unit_id: IdQ = None,
    utility: Utility | None = None,
) -> KeyPage[MeterHealthOut]:
    """The meters of `GET /meters` (same paging and filters) with their health: silent and
    errors by the thresholds of the `meter_silent` and `meter_comm_errors` alarms."""
    meters = list_meters(me=me, session=session, page=page, property_id=property_id,
                         unit_id=unit_id, utility=utility)  # fmt: skip
    states = health(session, [(m.id, m.gateway_id) for m in meters.items], now, ALARM_RULES)
    items = []
    for m in meters.items:
        h = states[m.id]
        items.append(
            MeterHealthOut(
                **m.model_dump(exclude={"id"}),
                code=m.id,
                state=h.state,
                last_reading=h.last_reading,
                bad_readings=h.bad_readings,
            )
        )
    return KeyPage(items=items, next_after=meters.next_after)


class DayUsageOut(BaseModel):
    day: date
    meter: Decimal | None  # None: a gap (no reading before a boundary, or one billing rejects)
    unit: Decimal | None  # the unit's meters of this utility, swaps included; None: a gap


class DailyUsageOut(BaseModel):
    meter_id: str
    point: str | None  # the counter counted; None: the meter reported no counter yet
    days: list[DayUsageOut]


@router.get("/meters/{meter_id}/daily-usage")
def daily_usage(
    request: Request,
    meter_id: str,
    me: Annotated[Principal, guard(Permission.METERS_READ, "path")],
    session: SessionDep,
    now: NowDep,
    days: Annotated[int, Query(ge=1, le=daily.MAX_DAYS)] = 30,
    last: Annotated[date | None, Query(ge=FIRST_DAY, le=LAST_DAY)] = None,
) -> DailyUsageOut:
    """Usage per local day, `days` days up to `last` (default today), counted as billing
    counts it: rollovers, swaps and rejected readings alike."""
    meter = scoped_meter(session, me, meter_id)
    point = daily.counter_point(session, meter, ALARM_RULES.counters)
    if point is None:
        return DailyUsageOut(meter_id=meter.code, point=None, days=[])
    tz = request.app.state.settings.zone
    end = last or now.astimezone(tz).date()
    mine = daily.meter_days(session, meter, point, last=end, days=days, tz=tz)
    unit = daily.unit_days(session, meter, point, last=end, days=days, tz=tz)
    by_day = {d.day: d.quantity for d in unit}
    return DailyUsageOut(
        meter_id=meter.code,
        point=point,
        days=[DayUsageOut(day=d.day, meter=d.quantity, unit=by_day.get(d.day)) for d in mine],
    )
