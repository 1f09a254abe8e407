"""Users, their role and properties, login tokens (stored only as SHA-256 hashes), and the
login attempts the throttle counts (in the database, so every API process sees the same)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.models.base import Base
from cloud.models.portfolio import str_enum


class Role(enum.StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    FRONT_DESK = "front_desk"
    FINANCE = "finance"
    MAINTENANCE = "maintenance"
    INSTALLER = "installer"
    TENANT = "tenant"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    # The console's language ("zh_CN", "en"); empty: the default (zh_CN).
    locale: Mapped[str] = mapped_column(String(8), default="", server_default="")
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id PHC string
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    # For role=tenant: the person this login belongs to.
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UserProperty(Base):
    """The properties a non-admin user may act on."""

    __tablename__ = "user_properties"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), primary_key=True)


class AuthToken(Base):
    """A browser session or an API bearer token; the secret itself is never stored."""

    __tablename__ = "auth_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "session" | "bearer"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(default=False)


class LoginAttempt(Base):
    """One login attempt from a client address, kept while it is inside the throttle's window."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_ip_ts", "ip", "ts"),
        Index("ix_login_attempts_ts", "ts"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    ip: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginFailure(Base):
    """Password tries at one username from one source since the last success from there
    (cloud.security.throttle); unknown usernames get rows too, so they answer the same."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_not_before", "not_before"),)

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    tries: Mapped[int] = mapped_column(Integer)
    # The next try from this source waits until then.
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
