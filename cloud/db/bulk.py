"""Bulk inserts, for every table that takes many rows at once. All run in the session's
transaction; the caller commits.

`insert_rows` appends (billing runs, imports): COPY on PostgreSQL, executemany elsewhere. A
monthly run writes hundreds of thousands of lines; COPY moves them in one stream instead of one
statement (or one VALUES batch) at a time.

`insert_new_rows` is idempotent and counts (ingest): on PostgreSQL, COPY (binary) into a
temporary staging table, then one `INSERT … SELECT … ON CONFLICT DO NOTHING`, whose rowcount is
the number of new rows. A multi-row `VALUES … RETURNING` spends most of its time in the driver,
parsing a fresh query text of thousands of placeholders per batch. SQLite: one prepared
`INSERT … ON CONFLICT DO NOTHING` run for every row (executemany); the driver's rowcount is the
sum of the rows it inserted. Either way a resend, a duplicate delivery, or the same row twice in
one batch is skipped, never stored twice.

`insert_ignoring_duplicates` is the same for a handful of rows: one plain statement.
"""

from __future__ import annotations

import enum
import json
import zlib
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from psycopg import sql
from sqlalchemy import Insert, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys (the caller commits)."""
    if not rows:
        return
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    json_columns = {c.name for c in table.columns if c.type.__class__.__name__ == "JSON"}
    # convert only the cells that need it (JSON text, enum values); the rest go as they are
    fix = [(i, c in json_columns) for i, c in enumerate(columns)
           if c in json_columns or isinstance(rows[0][c], enum.Enum)]  # fmt: skip
    raw = conn.connection.driver_connection
    assert raw is not None
    names = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            values = [row[c] for c in columns]
            for i, is_json in fix:
                v = values[i]
                values[i] = json.dumps(v, ensure_ascii=False) if is_json else _plain(v)
            copy.write_row(values)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


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


def insert_ignoring_duplicates(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING on the table's unique keys, on SQLite and PostgreSQL."""
    if rows:
        session.execute(_upsert_ignore(session, table), rows)


def _upsert_ignore(session: Session, table: Any) -> Insert:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()
