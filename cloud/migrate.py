"""Alembic, driven from code: `anju cloud migrate` and the tests call these."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from cloud.db import normalize_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(*, url: str | None = None, connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = normalize_url(url) if url else None
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url=url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url=url), revision)
