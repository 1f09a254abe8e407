"""Signed commands to a gateway: issue one (queued for the dispatcher), read what became of it.

Sending is guarded by its own permission, and a command that can open a door by one more
(`COMMAND_PERMISSIONS`); every command sent is audited. Reading a command's state needs what
reading the gateway needs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, FastAPI, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import NowDep, SessionDep, guard, not_found, scoped_get
from cloud.api.problems import ProblemError
from cloud.commands import service
from cloud.commands.keys import signing_key
from cloud.models import CommandResultRow, Gateway, GatewayCommand
from cloud.security import audit
from cloud.security.authz import COMMAND_PERMISSIONS, Permission, Principal
from protocols.errors import ConfigError
from protocols.mqtt.commands import MAX_TTL, Args, CommandName

router = APIRouter(tags=["gateways"])
GatewayId = Annotated[str, Path(max_length=64)]


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: CommandName
    args: Args = {}
    # Seconds the command stays valid (default ANJU_COMMAND_TTL_S).
    ttl_s: Annotated[int | None, Field(ge=5, le=int(MAX_TTL.total_seconds()))] = None


class CommandResultOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    status: str
    reason: str | None
    detail: str
    data: dict[str, Any]
    ts: datetime
    received: datetime


class CommandOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    gateway_id: str
    name: str
    args: dict[str, Any]
    issued_by: str
    issued_at: datetime
    expires_at: datetime
    state: str  # queued, sent, done, failed, rejected, expired
    reason: str | None
    detail: str
    result: dict[str, Any]
    sent_at: datetime | None
    finished_at: datetime | None
    results: list[CommandResultOut] = []  # every report, a replay's refusal included

    @classmethod
    def of(cls, c: GatewayCommand, results: list[CommandResultRow]) -> CommandOut:
        reports = [CommandResultOut.model_validate(r) for r in results]
        return cls.model_validate(c).model_copy(update={"results": reports})


def app_signing_key(app: FastAPI) -> Ed25519PrivateKey:
    """The key given to `create_app`, else the configured one (read once)."""
    key: Ed25519PrivateKey | None = app.state.command_key
    if key is None:
        try:
            key = app.state.command_key = signing_key(app.state.settings)
        except ConfigError as exc:
            raise ProblemError(503, str(exc)) from None
    return key


@router.post("/gateways/{gateway_id}/commands", status_code=202)
def send_command(
    gateway_id: GatewayId,
    body: CommandIn,
    me: Annotated[Principal, guard(Permission.GATEWAYS_COMMAND, "path")],
    session: SessionDep,
    now: NowDep,
    request: Request,
) -> CommandOut:
    """Sign and queue a command; the dispatcher publishes it. Poll the GET for its result."""
    gateway = scoped_get(session, me, Gateway, gateway_id)
    needed = COMMAND_PERMISSIONS.get(body.name)
    if needed is not None and not me.can(needed):
        raise ProblemError(403, f"role {me.role} may not {needed} ({body.name})")
    key = app_signing_key(request.app)
    ttl = timedelta(seconds=body.ttl_s or request.app.state.settings.command_ttl_s)
    row = service.issue(
        session, key, gateway.id, body.name, body.args, issued_by=me.username, now=now, ttl=ttl
    )
    detail = {"command_id": row.id, "name": row.name, "args": row.args}
    audit.about(session, me, "gateway.command", now, gateway, detail=detail)
    session.commit()
    dispatcher = getattr(request.app.state, "commands", None)
    if dispatcher is not None:
        dispatcher.queued.set()
    return CommandOut.of(row, [])


@router.get("/gateways/{gateway_id}/commands/{command_id}")
def get_command(
    gateway_id: GatewayId,
    command_id: Annotated[str, Path(max_length=36)],
    me: Annotated[Principal, guard(Permission.METERS_READ, "path")],
    session: SessionDep,
) -> CommandOut:
    gateway = scoped_get(session, me, Gateway, gateway_id)
    row = session.get(GatewayCommand, command_id)
    if row is None or row.gateway_id != gateway.id:
        raise not_found("command", command_id)
    return CommandOut.of(row, service.results_of(session, row.id))
