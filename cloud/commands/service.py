"""The commands table: issue (sign and queue), claim for sending, record what gateways said.

Plain functions over a session; the caller commits. A command is signed once, when issued, and
its signed bytes are what is published. Sending claims a queued row (`queued` → `sent`) in one
UPDATE, so two dispatchers never publish the same command.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.db import as_utc
from cloud.models import CommandResultRow, CommandState, GatewayCommand
from cloud.models.commands import FINAL_STATES
from cloud.quarantine import Reject
from protocols.mqtt import messages as msg
from protocols.mqtt.commands import Command, CommandResult, sign

CLAIM_LIMIT = 100


def issue(
    session: Session,
    key: Ed25519PrivateKey,
    gateway_id: str,
    name: str,
    args: dict[str, Any],
    *,
    issued_by: str,
    now: datetime,
    ttl: timedelta,
) -> GatewayCommand:
    """Sign a command for a registered gateway and queue it (pydantic's ValidationError for a
    bad name or args)."""
    command = sign(
        Command(
            gateway_id=gateway_id,
            id=uuid.uuid4(),
            name=name,
            args=args,
            issued_at=now,
            expires_at=now + ttl,
        ),
        key,
    )
    row = GatewayCommand(
        id=str(command.id),
        gateway_id=gateway_id,
        name=command.name,
        args=dict(command.args),
        issued_by=issued_by,
        issued_at=command.issued_at,
        expires_at=command.expires_at,
        payload=msg.encode(command).decode(),
        state=CommandState.QUEUED,
        detail="",
        result={},
    )
    session.add(row)
    return row


def claim(
    session: Session, now: datetime, *, only: str | None = None
) -> list[tuple[str, str, str]]:
    """Queued commands to publish now, as (id, gateway, payload), marked sent; those that
    expired while queued are marked expired instead. `only`: just that command."""
    query = select(GatewayCommand).where(GatewayCommand.state == CommandState.QUEUED)
    if only is not None:
        query = query.where(GatewayCommand.id == only)
    rows = session.scalars(query.order_by(GatewayCommand.issued_at).limit(CLAIM_LIMIT)).all()
    claimed = []
    for row in rows:
        expired = as_utc(row.expires_at) <= now
        values: dict[str, Any] = (
            {"state": CommandState.EXPIRED, "finished_at": now}
            if expired
            else {"state": CommandState.SENT, "sent_at": now}
        )
        done = session.execute(
            update(GatewayCommand)
            .where(GatewayCommand.id == row.id, GatewayCommand.state == CommandState.QUEUED)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount == 1 and not expired:  # type: ignore[attr-defined]
            claimed.append((row.id, row.gateway_id, row.payload))
    return claimed


def unclaim(session: Session, command_ids: Sequence[str]) -> None:
    """Claimed commands that could not be published go back to the queue."""
    if command_ids:
        session.execute(
            update(GatewayCommand)
            .where(GatewayCommand.id.in_(command_ids), GatewayCommand.state == CommandState.SENT)
            .values(state=CommandState.QUEUED, sent_at=None)
            .execution_options(synchronize_session=False)
        )


@dataclass
class Recorded:
    rejects: list[Reject] = field(default_factory=list)  # for the quarantine
    repeated: int = 0  # results recorded before (a gateway published one again)


def record_results(
    session: Session, results: Sequence[tuple[str, CommandResult]], received: datetime
) -> Recorded:
    """Keep every result once; the first one settles the command (a later refusal of a replay
    does not undo a command that ran). A gateway may publish a result again (it keeps each
    until the broker has it, across restarts): one with the same command, status, reason and
    gateway clock `ts` as a recorded one is the same result, counted and not kept twice (the
    commands' rows are locked first, so two workers cannot both take it for new). Results for
    commands we never sent that gateway are returned as rejects for the quarantine."""
    ids = sorted({str(r.command_id) for _, r in results if r.command_id is not None})
    commands = {
        c.id: c
        for c in session.scalars(
            select(GatewayCommand)
            .where(GatewayCommand.id.in_(ids))
            .order_by(GatewayCommand.id)
            .with_for_update()
        )
    }
    seen = {
        (r.command_id, r.status, r.reason, as_utc(r.ts))
        for r in session.execute(
            select(
                CommandResultRow.command_id,
                CommandResultRow.status,
                CommandResultRow.reason,
                CommandResultRow.ts,
            ).where(CommandResultRow.command_id.in_(list(commands)))
        )
    }
    recorded = Recorded()
    for topic_name, result in results:
        row = commands.get(str(result.command_id))
        if row is None or row.gateway_id != result.gateway_id:
            what = "an unreadable command" if result.command_id is None else "an unknown command"
            recorded.rejects.append(
                Reject(
                    topic_name,
                    "unknown_command",
                    f"gateway {result.gateway_id!r} reports on {what}",
                    msg.encode(result),
                )
            )
            continue
        reason = result.reason.value if result.reason else None
        key = (row.id, result.status.value, reason, result.ts)
        if key in seen:
            recorded.repeated += 1
            continue
        seen.add(key)
        session.add(
            CommandResultRow(
                command_id=row.id,
                gateway_id=result.gateway_id,
                status=result.status.value,
                reason=reason,
                detail=result.detail,
                data=result.data,
                ts=result.ts,
                received=received,
            )
        )
        if row.state not in FINAL_STATES:
            row.state = result.status.value
            row.reason = reason
            row.detail = result.detail
            row.result = result.data
            row.finished_at = received
    return recorded


def results_of(session: Session, command_id: str) -> list[CommandResultRow]:
    query = select(CommandResultRow).where(CommandResultRow.command_id == command_id)
    return list(session.scalars(query.order_by(CommandResultRow.id)))
