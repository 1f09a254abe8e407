"""The gateway registry (read side) and the ingest counters for Prometheus."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import select

from cloud.api.deps import SessionDep
from cloud.api.problems import ProblemError
from cloud.models import Gateway

router = APIRouter(tags=["gateways"])
metrics_router = APIRouter(tags=["operations"])


class GatewayOut(BaseModel):
    id: str
    name: str
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
            building=g.building,
            online=g.online,
            last_seen=g.last_seen,
            stored_seq=g.stored_seq,
            pending=g.pending,
            dropped=g.dropped,
        )


@router.get("/gateways")
def list_gateways(session: SessionDep) -> list[GatewayOut]:
    return [GatewayOut.of(g) for g in session.scalars(select(Gateway).order_by(Gateway.id))]


@router.get("/gateways/{gateway_id}")
def get_gateway(gateway_id: str, session: SessionDep) -> GatewayOut:
    gateway = session.get(Gateway, gateway_id)
    if gateway is None:
        raise ProblemError(404, f"no gateway {gateway_id!r}")
    return GatewayOut.of(gateway)


@metrics_router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format; empty when ingest runs in another process."""
    worker = getattr(request.app.state, "ingest", None)
    body = worker.metrics.render() if worker is not None else ""
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")
