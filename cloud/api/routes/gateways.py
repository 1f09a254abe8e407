"""The gateway registry (read side, scoped by the property a gateway serves) and the ingest
counters for Prometheus. A gateway not yet placed in a property is seen only through the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import select

from cloud.api.deps import SessionDep, guard, scoped_get
from cloud.api.paging import KeyPage, KeyPageQ, Page, PageQ, fetch_page, page_of
from cloud.api.scope import PropertyQ, scope_filter
from cloud.metrics import CONTENT_TYPE
from cloud.models import Event, Gateway
from cloud.security.authz import Permission, Principal

router = APIRouter(tags=["gateways"])
metrics_router = APIRouter(tags=["operations"])


class GatewayOut(BaseModel):
    id: str
    name: str
    property_id: int | None
    building: str
    online: bool
    last_seen: datetime | None
    stored_seq: int
    pending: int
    dropped: int

    @classmethod
    def of(cls, g: Gateway) -> GatewayOut:
        return cls(
            id=g.id,
            name=g.name,
            property_id=g.property_id,
            building=g.building,
            online=g.online,
            last_seen=g.last_seen,
            stored_seq=g.stored_seq,
            pending=g.pending,
            dropped=g.dropped,
        )


@router.get("/gateways")
def list_gateways(
    me: Annotated[Principal, guard(Permission.METERS_READ, "list")],
    session: SessionDep,
    page: KeyPageQ,
    property_id: PropertyQ = None,
) -> KeyPage[GatewayOut]:
    query = select(Gateway).where(scope_filter(me, Gateway.property_id, property_id))
    rows, nxt = fetch_page(session, query, Gateway.id, page.after, page.limit)
    return KeyPage(items=[GatewayOut.of(g) for g in rows], next_after=nxt)


@router.get("/gateways/{gateway_id}")
def get_gateway(
    gateway_id: Annotated[str, Path(max_length=64)],
    me: Annotated[Principal, guard(Permission.METERS_READ, "path")],
    session: SessionDep,
) -> GatewayOut:
    return GatewayOut.of(scoped_get(session, me, Gateway, gateway_id))


class EventOut(BaseModel):
    id: int
    seq: int
    type: str
    source: str
    ts: datetime
    data: dict[str, Any]

    @classmethod
    def of(cls, e: Event) -> EventOut:
        return cls(id=e.id, seq=e.seq, type=e.type, source=e.source, ts=e.ts, data=e.data)


@router.get("/gateways/{gateway_id}/events")
def list_events(
    gateway_id: Annotated[str, Path(max_length=64)],
    me: Annotated[Principal, guard(Permission.DOORS_READ, "path")],
    session: SessionDep,
    page: PageQ,
    type_: Annotated[str | None, Query(alias="type", max_length=64)] = None,
) -> Page[EventOut]:
    """What the gateway reported (door decisions, lock events), oldest first: read like the
    doors' own events, so a tenant (who may read tenant records) sees no one else's entries."""
    gateway = scoped_get(session, me, Gateway, gateway_id)
    query = select(Event).where(Event.gateway_id == gateway.id)
    if type_ is not None:
        query = query.where(Event.type == type_)
    return page_of(session, query, Event.id, page, EventOut.of)


@metrics_router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format; empty when ingest runs in another process."""
    worker = getattr(request.app.state, "ingest", None)
    body = worker.metrics.render() if worker is not None else ""
    return PlainTextResponse(body, media_type=CONTENT_TYPE)
