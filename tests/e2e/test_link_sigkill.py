"""The gateway killed with SIGKILL in the middle of a burst, then restarted from its store.

Everything but the cloud's ingest worker runs as a child process: the gateway (`anju edge run`,
polling simulated meters fast), the meters (`anju sim meters`) and, on the embedded variant, the
broker (`anju broker`). A server inside the test process would keep the killed gateway's socket
open past the test, which the leak guards rightly fail.

The cloud starts late, so the gateway first builds a backlog, then sends it as a burst of full
batches, at most a window of them unacknowledged and the rest still unsent. The ingest worker
runs in the test's process, as a client (its sockets close with it): while the test runs
synchronous code it can neither store nor acknowledge anything, so the kill lands while records
the cloud has not stored are in the outbox, for certain, not by timing.

What the gateway produced is recorded by a trigger inside its own store, in the same
transaction as each record, so the record of it survives the kill and does not depend on the
outbox or uplink under test.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from tests.conftest import free_port
from tests.e2e.link_harness import Link, Row, as_async, assert_same, wait_until
from tests.e2e.processes import Processes

pytestmark = pytest.mark.timeout(240)
log = logging.getLogger(__name__)

METERS = 10
PROFILE = "eastron-sdm120"  # 10 numeric points a poll, no text
POLL_S = 0.1  # about 1,000 readings a second: always a burst on its way
BACKLOG = 3000
KILL_AFTER_STORED = 1000
RECORD_PRODUCED = """
CREATE TABLE produced (epoch INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
                       body TEXT NOT NULL);
CREATE TRIGGER record_produced AFTER INSERT ON outbox BEGIN
    INSERT INTO produced VALUES (NEW.epoch, NEW.seq, NEW.kind, NEW.body);
END;
"""


def gateway_config(link: Link, meters_port: int) -> Path:
    config = link.config.model_dump(mode="json")
    config["buses"] = [
        {
            "name": "meters",
            "tcp": f"127.0.0.1:{meters_port}",
            "poll_interval_s": POLL_S,
            "timeout_s": 2.0,
            "devices": [
                {"id": f"m-{unit:03d}", "unit_id": unit, "profile": PROFILE}
                for unit in range(1, METERS + 1)
            ],
        }
    ]
    path = link.tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def produced(store: Path) -> dict[int, list[Row]]:
    """What the trigger recorded, by epoch."""
    with contextlib.closing(sqlite3.connect(store)) as db:
        rows = db.execute("SELECT epoch, seq, kind, body FROM produced ORDER BY rowid").fetchall()
    out: dict[int, list[Row]] = {}
    for epoch, seq, kind, body in rows:
        assert kind == "reading", f"seq {seq} is a {kind}"
        r = json.loads(body)
        ts = datetime.fromisoformat(r["ts"])
        out.setdefault(epoch, []).append((seq, r["meter"], r["point"], r["value"], ts))
    return out


async def test_gateway_killed_mid_burst_then_restarted_from_its_store(
    process_link: Link, processes: Processes
) -> None:
    link = process_link
    meters_port = free_port()
    await processes.serve(
        "meters", meters_port, "sim", "meters", "--profile", PROFILE,
        "--count", str(METERS), "--port", str(meters_port),
    )  # fmt: skip
    outbox = link.open_outbox()  # the store exists, with its epoch, before the gateway starts
    store = link.config.store.path
    with contextlib.closing(sqlite3.connect(store)) as db:
        db.executescript(RECORD_PRODUCED)
    run = ("edge", "run", "--config", str(gateway_config(link, meters_port)))

    gateway = processes.start("gateway", *run)
    # The cloud is not listening yet: a backlog builds up, which the gateway then sends as a
    # burst of full batches once ingest starts.
    await wait_until(
        as_async(lambda: outbox.stats().pending >= BACKLOG), 60, "a backlog", poll_s=0.2
    )
    async with link.ingest() as worker:
        seen: dict[str, int] = {}

        def kill_mid_burst() -> bool:
            """Kill once the cloud has stored part of the burst and the gateway holds more.

            Synchronous on purpose: ingest (in this loop) cannot store or ack meanwhile."""
            assert gateway.poll() is None, processes.log("gateway")
            stored = link.gateway().stored_seq
            if stored < KILL_AFTER_STORED or outbox.stats().last_seq <= stored:
                return False
            os.kill(gateway.pid, signal.SIGKILL)
            seen["stored"] = stored
            return True

        await wait_until(as_async(kill_mid_burst), 90, "a burst to kill in", poll_s=0.01)
        assert await processes.stop("gateway") == -signal.SIGKILL
        at_kill = outbox.stats()
        unstored = at_kill.last_seq - seen["stored"]
        assert unstored > 0
        assert at_kill.pending >= unstored, "records the cloud never stored left the outbox"

        gateway = processes.start("gateway", *run)  # the same command on the same store
        await wait_until(
            as_async(lambda: link.gateway().stored_seq >= at_kill.last_seq + KILL_AFTER_STORED),
            90,
            "readings made after the restart to be stored",
        )
        assert await processes.stop("meters") == 0  # production ends; the outbox can drain

        def drained() -> bool:
            stats = outbox.stats()
            return stats.pending == 0 and link.gateway().stored_seq == stats.last_seq

        await wait_until(as_async(drained), 60, "the outbox to drain")
        assert await processes.stop("gateway") == 0, processes.log("gateway")

    final = outbox.stats()
    assert (final.pending, final.acked_seq) == (0, final.last_seq)
    made = produced(store)
    stored = link.stored_by_epoch()
    assert set(made) == set(stored)
    assert len(made) == 2, "an epoch for each start of the gateway"
    assert sum(len(rows) for rows in made.values()) == final.last_seq
    for epoch, rows in made.items():
        assert_same(rows, stored[epoch])
    log.warning(
        "SIGKILL: %d readings, %d not stored at the kill (%d pending), %d duplicates resent",
        final.last_seq,
        unstored,
        at_kill.pending,
        worker.metrics.duplicates,
    )
