"""Migrations run up from empty and back down on both databases, and match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.orm import Session

from cloud import migrate
from cloud.db import make_engine
from cloud.models import Base, LeaseTenant
from cloud.security.crypto import FieldKeys
from tests.cloud.world import build_world

# Older than every migration that rebuilds a table with children (SQLite batch mode).
OLDER = "0013"


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_one_linear_head() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_downgrade_to_empty_and_up_again(database_url: str) -> None:
    assert set(Base.metadata.tables) <= _tables(database_url)
    migrate.downgrade(database_url, "base")
    assert _tables(database_url) <= {"alembic_version"}
    migrate.upgrade(database_url)
    assert set(Base.metadata.tables) <= _tables(database_url)


def test_upgrading_keeps_every_row(database_url: str, keys: FieldKeys) -> None:
    """A migration that rebuilds a table (SQLite's batch mode) must not cascade to its children."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            world = build_world(session, keys)
            p1, p2 = world.sites["P1"], world.sites["P2"]
            session.add(LeaseTenant(lease_id=p1.lease_id, tenant_id=p2.tenant_id))
            session.commit()
        before = _counts(engine)
        migrate.downgrade(database_url, OLDER)
        older_tables = _tables(database_url)
        migrate.upgrade(database_url)
        after = _counts(engine)
    finally:
        engine.dispose()
    kept = {t: n for t, n in before.items() if t in older_tables}
    assert kept["lease_tenants"] == 1
    assert {t: after[t] for t in kept} == kept


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in Base.metadata.tables.items()
        }
