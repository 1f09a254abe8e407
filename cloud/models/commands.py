"""Commands the cloud signed for gateways, and every result a gateway reported for them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.models.base import Base


class CommandState(enum.StrEnum):
    QUEUED = "queued"  # signed and stored; a dispatcher publishes it
    SENT = "sent"  # published on down/cmd; no result yet
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"  # the gateway refused it (`reason`)
    EXPIRED = "expired"  # never sent: it expired while queued


FINAL_STATES = frozenset(
    {CommandState.DONE, CommandState.FAILED, CommandState.REJECTED, CommandState.EXPIRED}
)


class GatewayCommand(Base):
    __tablename__ = "commands"
    __table_args__ = (Index("ix_commands_gateway_issued", "gateway_id", "issued_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the command's UUID
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id"))
    name: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    issued_by: Mapped[str] = mapped_column(String(100), default="")
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The signed message exactly as it is published (sending never re-signs).
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    # The first result the gateway reported (a replay's refusal does not overwrite it).
    reason: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CommandResultRow(Base):
    """One `up/ack` as received: a command can have several (a replay is refused on its own)."""

    __tablename__ = "command_results"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    command_id: Mapped[str] = mapped_column(ForeignKey("commands.id"), index=True)
    gateway_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # the gateway's clock
    received: Mapped[datetime] = mapped_column(DateTime(timezone=True))
