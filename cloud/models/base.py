"""The one declarative base: every table registers on `Base.metadata` (Alembic reads it)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
