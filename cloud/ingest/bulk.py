"""Idempotent bulk insert for ingest: store a batch, skip what is already stored, count the new.

PostgreSQL: COPY (binary) into a temporary staging table, then one
`INSERT … SELECT … ON CONFLICT DO NOTHING`, whose rowcount is the number of new rows. A
multi-row `VALUES … RETURNING` (what SQLAlchemy sends for a list of rows) spends most of its
time in the driver, parsing a fresh query text of thousands of placeholders per batch.
SQLite: one prepared `INSERT … ON CONFLICT DO NOTHING` run for every row (executemany); the
driver's rowcount is the sum of the rows it inserted.

Either way ON CONFLICT skips rows whose unique key is stored, so a resend, a duplicate
delivery, or the same message twice in one batch is counted as a duplicate, never stored twice.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from psycopg import sql
from sqlalchemy import Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session


def insert_new_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert `rows` (dicts with the same keys) ignoring unique-key conflicts; return how many
    were new. Runs in the session's transaction; the caller commits."""
    if not rows:
        return 0
    if len(rows[0]) < 2:
        raise ValueError("bulk insert needs at least two columns")
    if session.get_bind().dialect.name == "postgresql":
        return _copy_insert(session, table, list(rows[0]), rows)
    stmt = sqlite.insert(table).on_conflict_do_nothing()
    return int(session.connection().execute(stmt, list(rows)).rowcount)


def _copy_insert(
    session: Session, table: Table, columns: list[str], rows: Sequence[dict[str, Any]]
) -> int:
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    # One staging table per table and column list, private to this connection and emptied at
    # every commit; made anew after a rollback (which undoes its creation).
    key = zlib.crc32(",".join(columns).encode())
    stage = sql.Identifier(f"_anju_stage_{table.name}_{key:08x}")
    target = sql.Identifier(*filter(None, (table.schema, table.name)))
    dbapi = session.connection().connection.driver_connection
    assert dbapi is not None
    with dbapi.cursor() as cur:
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS"
                " AS SELECT {} FROM {} WITH NO DATA"
            ).format(stage, names, target)
        )
        cur.execute(sql.SQL("SELECT {} FROM {} LIMIT 0").format(names, stage))
        oids = [col.type_code for col in cur.description or ()]
        values = itemgetter(*columns)  # a tuple for two or more columns
        with cur.copy(
            sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(stage, names)
        ) as copy:
            copy.set_types(oids)
            for row in rows:
                copy.write_row(values(row))
        cur.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
                target, names, names, stage
            )
        )
        return int(cur.rowcount)
