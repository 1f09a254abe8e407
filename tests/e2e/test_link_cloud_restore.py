"""The cloud's database restored from a backup while a gateway keeps running: the link heals
by itself, and what the cloud acknowledged after the backup is gone (docs/backup.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from cloud.backup import sqlite as sqlite_backup
from tests.e2e.link_harness import assert_same, link_on, wait_until

pytestmark = pytest.mark.timeout(90)


async def test_a_gateway_sends_again_after_the_cloud_is_restored(tmp_path: Path) -> None:
    """With nothing in flight, the gateway's next batch declares its span from the epoch's
    start, which covers the records the restored cloud no longer has."""
    async with link_on("embedded", tmp_path) as link:
        database = Path(str(make_url(link.database_url).database))
        link.open_outbox()
        kept = link.produce(0, 100)
        async with link.uplink() as uplink:
            async with link.ingest():
                await wait_until(link.drained, 30, "the first 100 to be stored")
                archive = sqlite_backup.backup(database, tmp_path / "backups", datetime.now(UTC))
                lost = link.produce(100, 100)
                await wait_until(link.drained, 30, "the next 100 to be stored")
            assert uplink.acked_seq == 200  # and the gateway deleted them
            sqlite_backup.restore(archive, database)  # the cloud is back as it was at 100
            assert link.gateway().stored_seq == 100
            after = link.produce(200, 100)
            async with link.ingest():
                await wait_until(link.drained, 30, "the gateway's new records to be stored")
        stored = link.stored()
        assert_same(kept + after, stored)
        assert not set(lost) & set(stored)
        assert link.gateway().stored_seq == 300
