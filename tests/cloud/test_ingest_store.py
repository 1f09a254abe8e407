"""Ingest's database side: idempotent batches, the contiguous high-water mark, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.store import advance, register_gateway, store_batch
from cloud.models import Gateway, GatewayEpoch, Quarantine, Reading
from protocols.mqtt import messages as msg

TS = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    maker = make_sessionmaker(engine)
    with maker.begin() as session:
        register_gateway(session, "gw-a")
        register_gateway(session, "gw-b")
    yield maker
    engine.dispose()


def telemetry(
    gid: str, after: int, seqs: list[int], epoch: int = 0, epoch_start: int = 0
) -> msg.Telemetry:
    return msg.Telemetry(
        gateway_id=gid,
        epoch=epoch,
        epoch_start=epoch_start,
        seq=seqs[-1],
        ts=TS,
        after=after,
        readings=[
            msg.Reading(
                seq=s, meter="m-1", point="energy", value=s / 10, ts=TS + timedelta(minutes=s)
            )
            for s in seqs
        ],
    )


def store(maker: sessionmaker[Session], *batches: msg.Telemetry) -> dict[str, int]:
    """Store in one transaction; the acks of epoch 0 by gateway."""
    with maker.begin() as session:
        result = store_batch(session, [("t", b) for b in batches], [], TS)
    assert all(epoch == 0 for _, epoch in result.acks)
    return {gid: seq for (gid, _), seq in result.acks.items()}


def test_advance_moves_across_touching_spans_and_keeps_the_others() -> None:
    assert advance(0, [(0, 10), (10, 20)]) == (20, [])
    assert advance(0, [(10, 20), (0, 10)]) == (20, [])
    assert advance(0, [(11, 20)]) == (0, [(11, 20)])
    assert advance(15, [(0, 10), (12, 30)]) == (30, [])
    assert advance(5, []) == (5, [])
    # spans beyond the mark are merged where they touch or overlap
    assert advance(0, [(40, 50), (20, 30), (30, 35), (25, 32)]) == (0, [(20, 35), (40, 50)])


def test_a_span_stored_out_of_order_is_acked_when_the_gap_fills(
    sessions: sessionmaker[Session],
) -> None:
    """Two workers of a shared subscription commit (10, 20] before (0, 10]: the second
    commit acknowledges both, with no resend of (10, 20]."""
    assert store(sessions, telemetry("gw-a", 10, [15, 20])) == {"gw-a": 0}
    assert store(sessions, telemetry("gw-a", 30, [31])) == {"gw-a": 0}
    assert store(sessions, telemetry("gw-a", 0, [3, 10])) == {"gw-a": 20}
    assert store(sessions, telemetry("gw-a", 20, [25, 30])) == {"gw-a": 31}
    with sessions() as session:
        mark = session.get(GatewayEpoch, ("gw-a", 0))
        assert mark is not None
        assert (mark.stored_seq, mark.ranges) == (31, [])


def test_a_wiped_store_starts_a_new_epoch_whose_records_are_new(
    sessions: sessionmaker[Session],
) -> None:
    old, new = 7, 2**63 - 1
    with sessions.begin() as session:
        first = store_batch(session, [("t", telemetry("gw-a", 0, [1, 2, 3], epoch=old))], [], TS)
    assert first.acks == {("gw-a", old): 3}
    # the same seqs from a fresh store, then a late resend from the old one
    with sessions.begin() as session:
        second = store_batch(
            session,
            [
                ("t", telemetry("gw-a", 0, [1, 2], epoch=new)),
                ("t", telemetry("gw-a", 0, [1, 2, 3], epoch=old)),
            ],
            [],
            TS,
        )
    assert (second.stored, second.duplicates) == (2, 3)
    assert second.acks == {("gw-a", old): 3, ("gw-a", new): 2}
    with sessions() as session:
        gateway = session.get(Gateway, "gw-a")
        assert gateway is not None
        assert (gateway.epoch, gateway.stored_seq) == (new, 2), "the newest epoch is current"
        rows = session.execute(
            select(Reading.epoch, Reading.seq).where(Reading.gateway_id == "gw-a")
        ).all()
        assert sorted(rows) == [(old, 1), (old, 2), (old, 3), (new, 1), (new, 2)]


def current_mark(maker: sessionmaker[Session], gid: str) -> tuple[int, int]:
    """The gateway's current epoch and its mark."""
    with maker() as session:
        gateway = session.get(Gateway, gid)
        assert gateway is not None
        return gateway.epoch, gateway.stored_seq


def test_an_epoch_begun_by_a_restart_is_marked_from_its_start(
    sessions: sessionmaker[Session],
) -> None:
    """A restarted gateway writes seqs 101.. under a new epoch that starts at 100: its mark
    starts there, whether its state or a batch (in any order) is seen first; the old epoch's
    last records, sent after, are acknowledged under the old one."""
    old, new = 11, 12
    with sessions.begin() as session:
        store_batch(session, [("t", telemetry("gw-a", 0, [1, 2, 3], epoch=old))], [], TS)
    state = msg.State(gateway_id="gw-a", epoch=new, epoch_start=100, seq=100, ts=TS, online=True)
    with sessions.begin() as session:
        store_batch(session, [], [("t", state)], TS)
    assert current_mark(sessions, "gw-a") == (new, 100)
    with sessions.begin() as session:
        result = store_batch(
            session,
            [
                ("t", telemetry("gw-a", 103, [104, 105], epoch=new, epoch_start=100)),
                ("t", telemetry("gw-a", 3, [4, 5, 100], epoch=old)),
                ("t", telemetry("gw-a", 100, [101, 102, 103], epoch=new, epoch_start=100)),
            ],
            [],
            TS,
        )
    assert result.acks == {("gw-a", old): 100, ("gw-a", new): 105}
    assert current_mark(sessions, "gw-a") == (new, 105)
    # a batch seen before any state seeds the mark too
    with sessions.begin() as session:
        later = store_batch(
            session, [("t", telemetry("gw-b", 50, [51], epoch=new, epoch_start=50))], [], TS
        )
    assert later.acks == {("gw-b", new): 51}


def test_duplicates_are_ignored_and_gaps_hold_the_mark(sessions: sessionmaker[Session]) -> None:
    assert store(sessions, telemetry("gw-a", 0, [1, 2, 3])) == {"gw-a": 3}
    assert store(sessions, telemetry("gw-a", 6, [7, 8])) == {"gw-a": 3}, "gap 4..6 not covered"
    assert store(sessions, telemetry("gw-a", 0, [1, 2, 3]), telemetry("gw-b", 0, [1])) == {
        "gw-a": 3,
        "gw-b": 1,
    }
    # the resend that fills the gap, together with the already stored tail
    assert store(sessions, telemetry("gw-a", 3, [4, 5, 6]), telemetry("gw-a", 6, [7, 8])) == {
        "gw-a": 8
    }
    with sessions() as session:
        seqs = session.scalars(
            select(Reading.seq).where(Reading.gateway_id == "gw-a").order_by(Reading.seq)
        ).all()
        assert seqs == list(range(1, 9))
        assert session.scalar(select(func.count()).select_from(Reading)) == 9


def test_a_declared_gap_advances_the_mark(sessions: sessionmaker[Session]) -> None:
    """Records the gateway dropped under its disk budget (1..500) lie inside `(after, seq]`:
    the gateway sends from its last ack, so the span covers them."""
    assert store(sessions, telemetry("gw-a", 0, [501, 502])) == {"gw-a": 502}


def test_text_readings_are_stored_beside_numbers(sessions: sessionmaker[Session]) -> None:
    serial = msg.Reading(seq=2, meter="m-1", point="serial", text="SDM-1234", ts=TS)
    batch = telemetry("gw-a", 0, [1]).model_copy(
        update={"seq": 2, "readings": [*telemetry("gw-a", 0, [1]).readings, serial]}
    )
    assert store(sessions, batch) == {"gw-a": 2}
    with sessions() as session:
        rows = session.execute(
            select(Reading.point, Reading.value, Reading.text).order_by(Reading.seq)
        ).all()
    assert [tuple(r) for r in rows] == [("energy", 0.1, None), ("serial", None, "SDM-1234")]


def test_unknown_gateways_and_states(sessions: sessionmaker[Session]) -> None:
    state = msg.State(gateway_id="gw-a", seq=9, ts=TS, online=True, pending=4, dropped=2)
    old = msg.State(gateway_id="gw-a", seq=1, ts=TS - timedelta(hours=1), online=False)
    stranger = msg.State(gateway_id="gw-x", seq=1, ts=TS, online=True)
    with sessions.begin() as session:
        result = store_batch(
            session,
            [("t/x", telemetry("gw-x", 0, [1]))],
            [("s/a", state), ("s/a", old), ("s/x", stranger)],
            TS,
        )
    assert result.acks == {}
    assert [r.reason for r in result.rejects] == ["unknown_gateway", "unknown_gateway"]
    with sessions() as session:
        gateway = session.get(Gateway, "gw-a")
        assert gateway is not None
        assert (gateway.online, gateway.pending, gateway.dropped) == (True, 4, 2)
        assert session.scalar(select(func.count()).select_from(Quarantine)) == 2
        assert session.scalar(select(func.count()).select_from(Reading)) == 0
