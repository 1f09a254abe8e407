"""A gateway's remote configuration: set the desired version, read desired vs applied.

Setting needs `gateways.configure` in the gateway's property; the body is validated by the
schema the gateway validates with, so a refusal names the field. The desired version is
published at once when this process runs ingest (it has the broker); the message is retained,
so a gateway offline now meets it when it connects.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Annotated, Any

import aiomqtt
from fastapi import APIRouter, Body, Path, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import IntegrityError

from cloud.api.deps import NowDep, SessionDep, guard, scoped_get
from cloud.api.problems import ProblemError
from cloud.api.routes.commands import app_signing_key
from cloud.fleet import remote_config
from cloud.models import Gateway, GatewayConfigVersion
from cloud.security import audit
from cloud.security.authz import Permission, Principal
from protocols.mqtt.downlink import MAX_CONFIG_BYTES

log = logging.getLogger(__name__)
router = APIRouter(tags=["gateways"])
GatewayId = Annotated[str, Path(max_length=64)]
# The body's JSON, bounded below the signed message's own limit (envelope and signature).
MAX_BODY_BYTES = MAX_CONFIG_BYTES // 2


class DesiredOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    body: dict[str, Any]
    created_by: str
    created_at: datetime


class ConfigOut(BaseModel):
    gateway_id: str
    desired: DesiredOut | None
    applied_version: int | None  # as the gateway last reported it
    error: str | None  # why the gateway refused the newest version it was offered
    drift: bool  # a desired version the gateway does not report applied
    published: bool | None = None  # on a PUT: whether it went to the broker now

    @classmethod
    def of(cls, gateway: Gateway, row: GatewayConfigVersion | None) -> ConfigOut:
        return cls(
            gateway_id=gateway.id,
            desired=None if row is None else DesiredOut.model_validate(row),
            applied_version=gateway.config_version,
            error=gateway.config_error,
            drift=row is not None and gateway.config_version != row.version,
        )


@router.get("/gateways/{gateway_id}/config")
def get_config(
    gateway_id: GatewayId,
    me: Annotated[Principal, guard(Permission.METERS_READ, "path")],
    session: SessionDep,
) -> ConfigOut:
    gateway = scoped_get(session, me, Gateway, gateway_id)
    return ConfigOut.of(gateway, remote_config.latest(session, gateway.id))


@router.put("/gateways/{gateway_id}/config")
async def put_config(
    gateway_id: GatewayId,
    body: Annotated[dict[str, Any], Body()],
    me: Annotated[Principal, guard(Permission.GATEWAYS_CONFIGURE, "path")],
    session: SessionDep,
    now: NowDep,
    request: Request,
) -> ConfigOut:
    """A new desired version (a rollback is an old body put again)."""
    gateway = scoped_get(session, me, Gateway, gateway_id)
    if len(json.dumps(body, ensure_ascii=False).encode()) > MAX_BODY_BYTES:
        raise ProblemError(413, f"a configuration is at most {MAX_BODY_BYTES} bytes of JSON")
    try:
        row, config = remote_config.add_version(session, gateway.id, body, by=me.username, now=now)
    except remote_config.InvalidConfigError as exc:
        raise ProblemError(422, str(exc)) from None
    key = app_signing_key(request.app)
    audit.about(session, me, "gateway.config", now, gateway, detail={"version": row.version})
    try:
        session.commit()
    except IntegrityError:
        raise ProblemError(409, "another version was set at the same time; retry") from None
    out = ConfigOut.of(gateway, row)
    if getattr(request.app.state, "ingest", None) is None:
        return out.model_copy(update={"published": False})
    try:
        await remote_config.publish(request.app.state.settings, key, config)
    except (aiomqtt.MqttError, TimeoutError) as exc:
        log.warning("[%s] config version %d not published (%s)", gateway.id, row.version, exc)
        return out.model_copy(update={"published": False})
    return out.model_copy(update={"published": True})
