"""Enrolment: staff issue a one-time token for a new gateway (with its QR code); the gateway
trades the token for its identity. The trade is the one route without a login: the token is
the credential, and the route is throttled per address like the login."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from cloud.api.deps import NowDep, SessionDep, client_ip, guard, require_property, scoped_get
from cloud.api.paging import CursorQ, LimitQ, fetch_newest
from cloud.api.problems import ProblemError
from cloud.api.routes.commands import app_signing_key
from cloud.fleet import enrolment
from cloud.models import Gateway, GatewayHealth
from cloud.security import audit, throttle
from cloud.security.authz import Permission, Principal
from protocols.errors import AnjuError
from protocols.fleet.enrolment import ENROL_PATH, EnrolGrant, EnrolRequest
from protocols.text import CLEAN

router = APIRouter(tags=["gateways"])
Label = Annotated[str, Field(max_length=200, pattern=CLEAN)]


class EnrolTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    property_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    # The new gateway's id; one is made up when not given.
    gateway_id: Annotated[str | None, Field(max_length=64)] = None
    name: Label = ""
    building: Label = ""
    ttl_s: Annotated[
        int,
        Field(ge=int(enrolment.MIN_TTL.total_seconds()), le=int(enrolment.MAX_TTL.total_seconds())),
    ] = int(enrolment.DEFAULT_TTL.total_seconds())


class EnrolTokenOut(BaseModel):
    token: str  # shown once
    gateway_id: str
    property_id: int
    expires_at: datetime
    command: str  # what the installer runs on the box
    qr_svg: str  # the same command as a QR code (SVG) for the installer's phone


def enrol_command(token: str, cloud_url: str) -> str:
    return f"anju edge enroll --token {token} --cloud {cloud_url}"


def qr_svg(text: str) -> str:
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=4, xmldecl=False)
    return out.getvalue().decode()


@router.post("/gateways/enrolment-tokens", status_code=201)
def issue_enrolment_token(
    body: EnrolTokenIn,
    request: Request,
    me: Annotated[Principal, guard(Permission.GATEWAYS_ENROL, "body")],
    session: SessionDep,
    now: NowDep,
    response: Response,
) -> EnrolTokenOut:
    response.headers["Cache-Control"] = "no-store"
    require_property(me, body.property_id)
    try:
        issued = enrolment.issue_token(
            session,
            property_id=body.property_id,
            now=now,
            created_by=me.username,
            gateway_id=body.gateway_id,
            name=body.name,
            building=body.building,
            ttl=timedelta(seconds=body.ttl_s),
        )
    except AnjuError as exc:
        raise ProblemError(409, str(exc)) from None
    audit.record(
        session,
        me,
        "gateway.enrol_token",
        now,
        target_type="gateway",
        target_id=issued.gateway_id,
        property_id=body.property_id,
    )
    session.commit()
    command = enrol_command(issued.token, str(request.base_url).rstrip("/"))
    return EnrolTokenOut(
        token=issued.token,
        gateway_id=issued.gateway_id,
        property_id=issued.property_id,
        expires_at=issued.expires_at,
        command=command,
        qr_svg=qr_svg(command),
    )


@router.post(ENROL_PATH.removeprefix("/api/v1"), responses={403: {}, 429: {}})
def enrol_gateway(
    body: EnrolRequest, request: Request, response: Response, session: SessionDep, now: NowDep
) -> EnrolGrant:
    """A gateway's identity for a valid token, once; refused with why otherwise."""
    response.headers["Cache-Control"] = "no-store"  # it holds the gateway's password
    ip = client_ip(request)
    attempt = throttle.record_attempt(session, throttle.source_of(ip), now)
    session.commit()
    wait = throttle.seconds_to_wait(session, attempt, now)
    if wait:
        session.delete(attempt)
        session.commit()
        raise ProblemError(
            429, "too many enrolment attempts from this address; wait and retry",
            headers={"Retry-After": str(wait)},
        )  # fmt: skip
    broker = enrolment.broker_view(request.app.state.settings, app_signing_key(request.app))
    try:
        grant = enrolment.enrol(session, body.token, now, broker)
    except enrolment.TokenRefusedError as exc:
        session.rollback()
        raise ProblemError(403, str(exc)) from None
    audit.record(
        session, None, "gateway.enrol", now, username=grant.gateway_id, ip=ip,
        target_type="gateway", target_id=grant.gateway_id,
    )  # fmt: skip
    session.commit()
    return grant


class HealthOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    ts: datetime
    received: datetime
    version: str
    started: datetime
    uptime_s: int
    cpu_percent: float
    memory_percent: float
    memory_available_mb: float
    disk_free_mb: float
    disk_free_percent: float
    temperature_c: float | None
    pending: int
    dropped: int
    meters_offline: int
    detail: dict[str, Any]


class HealthPage(BaseModel):
    items: list[HealthOut]
    next_after: str | None


@router.get("/gateways/{gateway_id}/health")
def gateway_health(
    gateway_id: Annotated[str, Path(max_length=64)],
    me: Annotated[Principal, guard(Permission.METERS_READ, "path")],
    session: SessionDep,
    after: CursorQ = None,
    limit: LimitQ = 50,
) -> HealthPage:
    """The gateway's health samples, newest first."""
    gateway = scoped_get(session, me, Gateway, gateway_id)
    query = select(GatewayHealth).where(GatewayHealth.gateway_id == gateway.id)
    rows, nxt = fetch_newest(
        session, query, GatewayHealth.received, GatewayHealth.id, after, limit=limit
    )
    return HealthPage(items=[HealthOut.model_validate(r) for r in rows], next_after=nxt)
