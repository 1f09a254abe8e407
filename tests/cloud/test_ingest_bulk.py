"""The bulk insert behind ingest (COPY + staging table on PostgreSQL, executemany on SQLite):
new rows are counted, stored rows and repeats inside one call are skipped, values round-trip."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import as_utc, make_engine, make_sessionmaker
from cloud.db.bulk import insert_new_rows
from cloud.ingest.store import register_gateway
from cloud.models import Reading

TS = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
READINGS: Table = Reading.__table__  # type: ignore[assignment]


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    maker = make_sessionmaker(engine)
    with maker.begin() as session:
        register_gateway(session, "gw-a")
    yield maker
    engine.dispose()


def rows(seqs: range | list[int]) -> list[dict[str, Any]]:
    return [
        {
            "gateway_id": "gw-a",
            "seq": s,
            "meter_id": f"m-{s % 7}",
            "point": "energy",
            "value": s / 3,
            "unit": "kWh",
            "quality": "good" if s % 5 else "uncertain",
            "ts": TS + timedelta(minutes=s),
        }
        for s in seqs
    ]


def insert(maker: sessionmaker[Session], batch: list[dict[str, Any]]) -> int:
    with maker.begin() as session:
        return insert_new_rows(session, READINGS, batch)


def stored(maker: sessionmaker[Session]) -> list[dict[str, Any]]:
    with maker() as session:
        found = session.scalars(select(Reading).order_by(Reading.seq)).all()
        return [
            {
                "gateway_id": r.gateway_id,
                "seq": r.seq,
                "meter_id": r.meter_id,
                "point": r.point,
                "value": r.value,
                "unit": r.unit,
                "quality": r.quality,
                "ts": as_utc(r.ts),
            }
            for r in found
        ]


def test_new_rows_are_counted_and_stored_ones_skipped(sessions: sessionmaker[Session]) -> None:
    assert insert(sessions, rows(range(1, 1001))) == 1000
    # a resend overlapping what is stored, with the same message twice in one batch
    assert insert(sessions, rows(range(900, 1101)) + rows(range(1050, 1101))) == 100
    assert insert(sessions, rows([5, 6, 7])) == 0
    assert insert(sessions, []) == 0
    assert stored(sessions) == rows(range(1, 1101))


def test_a_rolled_back_batch_leaves_nothing_behind(sessions: sessionmaker[Session]) -> None:
    """The staging table is emptied at commit and undone by a rollback: the next batch on the
    same pooled connection carries none of the rows of the one before."""
    with sessions() as session:
        assert insert_new_rows(session, READINGS, rows(range(1, 11))) == 10
        session.rollback()
    assert insert(sessions, rows(range(11, 21))) == 10
    assert insert(sessions, rows(range(21, 31))) == 10
    assert [r["seq"] for r in stored(sessions)] == list(range(11, 31))
    with sessions.begin() as session:
        session.execute(delete(Reading))  # e.g. a retention job: nothing may come back
    assert insert(sessions, rows(range(31, 36))) == 5
    assert [r["seq"] for r in stored(sessions)] == list(range(31, 36))


def test_one_column_is_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="two columns"), sessions.begin() as session:
        insert_new_rows(session, READINGS, [{"seq": 1}])
