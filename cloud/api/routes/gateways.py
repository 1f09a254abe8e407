"""The gateway registry (read side, scoped by the property a gateway serves) and the ingest
counters for Prometheus. A gateway not yet placed in a property is seen only through the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import select

from cloud.api.deps import SessionDep, guard, scoped_get
from cloud.api.paging import KeyPage, KeyPageQ, fetch_page
from cloud.api.scope import PropertyQ, scope_filter
from cloud.metrics import CONTENT_TYPE
from cloud.models import Gateway
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


@metrics_router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format; empty when ingest runs in another process."""
    worker = getattr(request.app.state, "ingest", None)
    body = worker.metrics.render() if worker is not None else ""
    return PlainTextResponse(body, media_type=CONTENT_TYPE)
