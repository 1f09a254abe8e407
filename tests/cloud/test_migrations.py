"""Migrations run up from empty and back down on both databases, and match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, inspect, select, text
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


def test_meters_keep_their_ids_as_codes_and_lose_foreign_bindings(database_url: str) -> None:
    """0017 on data: ids become codes, swaps follow the new ids, a binding to a gateway of
    another property or to no registered gateway is dropped, an unplaced one is placed."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    before = script.get_revision("0017").down_revision
    assert isinstance(before, str)
    migrate.downgrade(database_url, before)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            for sql in (
                "INSERT INTO organisations (id, name) VALUES (1, 'A')",
                "INSERT INTO properties (id, org_id, name, city, address)"
                " VALUES (1, 1, 'P1', '', ''), (2, 1, 'P2', '', '')",
                "INSERT INTO buildings (id, property_id, name, floors) VALUES (1, 1, 'A', 1),"
                " (2, 2, 'B', 1)",
                "INSERT INTO gateways (id, name, property_id, building, credential_hash, epoch,"
                " stored_seq, online, pending, dropped, dropped_upto) VALUES"
                " ('gw-1', '', 1, '', '', 0, 0, false, 0, 0, 0),"
                " ('gw-loose', '', NULL, '', '', 0, 0, false, 0, 0, 0)",
                "INSERT INTO meters (id, property_id, building_id, unit_id, kind, utility,"
                " profile, gateway_id, digits) VALUES"
                " ('m-own', 1, 1, NULL, 'master', 'water', 'x', 'gw-1', 5),"
                " ('m-new', 1, 1, NULL, 'master', 'water', 'x', 'gw-1', NULL),"
                " ('m-foreign', 2, 2, NULL, 'master', 'water', 'x', 'gw-1', NULL),"
                " ('m-ghost', 2, 2, NULL, 'master', 'water', 'x', 'gw-none', NULL),"
                " ('m-loose', 2, 2, NULL, 'master', 'water', 'x', 'gw-loose', NULL)",
                "INSERT INTO meter_swaps (old_meter_id, new_meter_id, swapped_at, old_final,"
                " new_initial) VALUES ('m-own', 'm-new', '2026-01-01 00:00:00+00', 12.5, 0)",
            ):
                conn.execute(text(sql))
        migrate.upgrade(database_url)
        with engine.connect() as conn:
            meters = {
                r.code: (r.org_id, r.gateway_id)
                for r in conn.execute(text("SELECT code, org_id, gateway_id FROM meters"))
            }
            swap = conn.execute(
                text(
                    "SELECT o.code AS old, n.code AS new, s.old_final FROM meter_swaps s"
                    " JOIN meters o ON o.id = s.old_meter_id"
                    " JOIN meters n ON n.id = s.new_meter_id"
                )
            ).one()
            placed = conn.execute(
                text("SELECT property_id FROM gateways WHERE id = 'gw-loose'")
            ).scalar_one()
        assert meters == {
            "m-own": (1, "gw-1"),
            "m-new": (1, "gw-1"),
            "m-foreign": (1, None),
            "m-ghost": (1, None),
            "m-loose": (1, "gw-loose"),
        }
        assert (swap.old, swap.new, float(swap.old_final)) == ("m-own", "m-new", 12.5)
        assert placed == 2
        migrate.downgrade(database_url, before)
        with engine.connect() as conn:
            back = conn.execute(text("SELECT old_meter_id, new_meter_id FROM meter_swaps")).one()
        assert tuple(back) == ("m-own", "m-new")
    finally:
        engine.dispose()
