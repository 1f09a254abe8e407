"""Bulk inserts for billing runs: COPY on PostgreSQL, executemany elsewhere.

A monthly run writes hundreds of thousands of lines; COPY moves them in one stream instead of one
statement (or one VALUES batch) at a time.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, insert
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
