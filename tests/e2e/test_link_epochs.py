"""A gateway whose store was wiped, and spans the cloud stores out of order."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from protocols.mqtt import messages as msg
from protocols.mqtt.topics import Kind, topic
from tests.e2e.link_harness import (
    Link,
    as_rows,
    assert_same,
    mqtt_client,
    reading_payloads,
    wait_until,
)

pytestmark = pytest.mark.timeout(90)


def _store_files(link: Link) -> list[Path]:
    path = link.config.store.path
    return [path.parent / f"{path.name}{suffix}" for suffix in ("", "-wal", "-shm")]


def _close(link: Link) -> None:
    assert link.outbox is not None
    link.outbox.close()


def _wipe(link: Link) -> None:
    _close(link)
    for file in _store_files(link):
        file.unlink(missing_ok=True)


async def test_wiped_store_restarts_at_seq_1_and_its_records_are_stored(link: Link) -> None:
    outbox = link.open_outbox()
    old_epoch = outbox.epoch
    before = link.produce(0, 600)
    async with link.ingest() as worker:
        async with link.uplink():
            await wait_until(link.drained, 30, "the first store to drain")
        _wipe(link)
        outbox = link.open_outbox()
        after = link.produce(600, 400)
        assert [r[0] for r in after] == list(range(1, 401)), "a wiped store starts at seq 1"
        async with link.uplink() as uplink:
            await wait_until(link.drained, 30, "the new store to drain")
            assert uplink.acked_seq == 400
        assert worker.metrics.duplicates == 0, "new records taken for resends"
    stored = link.stored_by_epoch()
    assert set(stored) == {old_epoch, outbox.epoch}
    assert_same(before, stored[old_epoch])
    assert_same(after, stored[outbox.epoch])
    gateway = link.gateway()
    assert (gateway.epoch, gateway.stored_seq) == (outbox.epoch, 400)


async def test_what_a_store_restored_from_a_backup_writes_is_stored_too(
    link: Link, tmp_path: Path
) -> None:
    """The backup holds seqs 1..100; the gateway went on to 300, all stored, then its disk was
    replaced with the backup. What it writes after the restore reuses seqs 101.. and must be
    stored as new records, not dropped as resends of the ones the cloud has."""
    backup = tmp_path / "backup"
    backup.mkdir()
    first = link.open_outbox().epoch
    made = {first: link.produce(0, 100)}
    _close(link)
    for file in _store_files(link):
        if file.exists():
            shutil.copy2(file, backup / file.name)
    second = link.open_outbox().epoch
    made[second] = link.produce(100, 200)
    async with link.ingest() as worker:
        async with link.uplink():
            await wait_until(link.drained, 30, "the original store to drain")
        _close(link)
        for file in _store_files(link):
            file.unlink(missing_ok=True)
            if (backup / file.name).exists():
                shutil.copy2(backup / file.name, file)
        third = link.open_outbox().epoch
        made[third] = link.produce(300, 150)
        assert [r[0] for r in made[third]] == list(range(101, 251)), "seqs reused"
        async with link.uplink():
            await wait_until(link.drained, 30, "the restored store to drain")
        assert worker.metrics.duplicates == 100, "the backup's own records, sent again"
    stored = link.stored_by_epoch()
    assert set(stored) == {first, second, third}
    for epoch, rows in made.items():
        assert_same(rows, stored[epoch])
    assert (link.gateway().epoch, link.gateway().stored_seq) == (third, 250)


async def test_an_ack_for_the_wiped_store_deletes_nothing(link: Link) -> None:
    """The broker may still hold acks for the old store in the gateway's session: they name
    seqs the new store has reused, and must not delete those rows."""
    outbox = link.open_outbox()
    link.produce(0, 300)
    stale = msg.Ack(
        gateway_id=link.gateway_id,
        epoch=outbox.epoch + 1 if outbox.epoch < msg.MAX_EPOCH else 1,
        seq=300,
        ts=datetime.now(UTC),
        stored_seq=300,
    )
    async with link.uplink() as uplink:
        await asyncio.wait_for(uplink.connected.wait(), 10)
        async with mqtt_client(link.mqtt_url, f"test-{link.gateway_id}") as client:
            await client.publish(topic(link.gateway_id, Kind.DOWN_ACK), msg.encode(stale), qos=1)
            mine = stale.model_copy(update={"epoch": outbox.epoch, "seq": 100, "stored_seq": 100})
            await client.publish(topic(link.gateway_id, Kind.DOWN_ACK), msg.encode(mine), qos=1)

        async def applied() -> bool:
            return uplink.acked_seq == 100

        await wait_until(applied, 10, "the gateway's own ack to be applied")
    stats = outbox.stats()
    assert (stats.pending, stats.acked_seq) == (200, 100)


async def test_a_span_stored_before_the_gap_is_acked_without_a_resend(link: Link) -> None:
    """(10, 20] is stored first; storing (0, 10] then acknowledges 20 at once."""
    gid = link.gateway_id
    payloads = reading_payloads(0, 20)
    rows = list(enumerate(msg.encode_records(msg.RecordKind.READING, payloads), start=1))

    def batch(after: int, upto: int) -> bytes:
        return msg.encode_batch(
            msg.RecordKind.READING,
            gateway_id=gid,
            after=after,
            ts=datetime.now(UTC),
            records=rows[after:upto],
            epoch=5,
        )

    acks: list[int] = []
    async with link.ingest(), mqtt_client(link.mqtt_url, f"test-{gid}") as client:
        await client.subscribe(topic(gid, Kind.DOWN_ACK), qos=1)

        async def acked(upto: int) -> bool:
            while len(client.messages):
                message = await anext(client.messages)
                assert isinstance(message.payload, bytes)
                ack = msg.decode(msg.Ack, message.payload)
                assert ack.epoch == 5
                acks.append(ack.stored_seq)
            return bool(acks) and acks[-1] == upto

        await client.publish(topic(gid, Kind.TELEMETRY), batch(10, 20), qos=1)
        await wait_until(lambda: acked(0), 20, "the out-of-order span to be stored")
        await client.publish(topic(gid, Kind.TELEMETRY), batch(0, 10), qos=1)
        await wait_until(lambda: acked(20), 20, "both spans to be acknowledged")
    assert acks == [0, 20]
    assert_same(as_rows(list(range(1, 21)), payloads), link.stored_by_epoch()[5])
