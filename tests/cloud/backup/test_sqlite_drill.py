"""The SQLite restore drill: back up keys and a live database, lose both, restore keys then
data, and find every row and every tenant's personal data again."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from anju.cli import cli
from cloud import migrate
from cloud.backup import sqlite as sqlite_backup
from cloud.db import make_engine, make_sessionmaker
from cloud.models import Gateway, Reading
from cloud.security import crypto
from cloud.security.crypto import FieldKeys, generate_key
from tests.cloud.backup.drill import create_data, digests, revealed_pii, writer_reading
from tests.cloud.backup.test_key_backup import PASSPHRASE, production_env

BATCH = 10  # readings per transaction of the writer


class Writer(threading.Thread):
    """Ingest stand-in: commits BATCH readings per transaction until told to stop."""

    def __init__(self, url: str) -> None:
        super().__init__(name="drill-writer")
        self.url = url
        self.batches = 0
        self.started_batches = threading.Event()
        self.halt = threading.Event()

    def run(self) -> None:
        engine = make_engine(self.url)
        try:
            with make_sessionmaker(engine)() as session:
                gateway = session.scalars(select(Gateway.id).order_by(Gateway.id)).first()
                assert gateway is not None
                while not self.halt.is_set():
                    first = self.batches * BATCH + 1
                    session.add_all(writer_reading(gateway, s) for s in range(first, first + BATCH))
                    session.commit()
                    self.batches += 1
                    if self.batches >= 3:
                        self.started_batches.set()
        finally:
            engine.dispose()


def anju(data_dir: Path, url: str, *args: str) -> Result:
    env = production_env(data_dir, ANJU_DATABASE_URL=url)
    return CliRunner().invoke(cli, ["cloud", *args], env=env)


def test_restore_drill_with_a_writer_running(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'anju.db'}"
    migrate.upgrade(url)
    keys = FieldKeys(current="k1", keys={"k1": generate_key()}, index_key=generate_key())
    crypto.write_key_file(data / crypto.KEY_FILE, keys)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        create_data(session, keys)
    engine.dispose()
    before, people = digests(url), revealed_pii(url, keys)
    assert before["tenants"][0] >= 3
    assert before["invoices"][0] >= 3
    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE)
    sealed = tmp_path / "offsite" / "keys.sealed"
    sealed.parent.mkdir()
    result = anju(data, url, "keys", "backup", str(sealed), "--passphrase-file", str(passphrase))
    assert result.exit_code == 0, result.output

    writer = Writer(url)
    writer.start()
    try:
        assert writer.started_batches.wait(10)
        at_start = writer.batches
        result = anju(data, url, "backup", "--to", str(tmp_path / "offsite"))
        at_backup = writer.batches
        assert result.exit_code == 0, result.output
    finally:
        writer.halt.set()
        writer.join(10)
    assert writer.batches > at_backup  # still writing after the copy was taken
    (archive,) = (tmp_path / "offsite").glob("anju-*.db.gz")

    lost = [data / crypto.KEY_FILE, *(data.glob("anju.db*"))]  # the disk is gone
    for path in lost:
        path.unlink()
    result = anju(data, url, "restore", str(archive), "--yes")  # data before keys: refused
    assert result.exit_code == 1
    assert "no field encryption keys" in result.output
    result = anju(data, url, "keys", "restore", str(sealed), "--passphrase-file", str(passphrase))
    assert result.exit_code == 0, result.output
    result = anju(data, url, "restore", str(archive), "--yes")
    assert result.exit_code == 0, result.output
    assert "personal data decrypts" in result.output

    assert (data / "anju.db").stat().st_mode & 0o777 == 0o600
    assert archive.stat().st_mode & 0o777 == 0o600
    after = digests(url)
    restored_keys = crypto.read_key_file(data / crypto.KEY_FILE)
    assert revealed_pii(url, restored_keys) == people
    assert {t: d for t, d in after.items() if t != "readings"} == {
        t: d for t, d in before.items() if t != "readings"
    }
    written = after["readings"][0] - before["readings"][0]
    assert written % BATCH == 0  # whole transactions only: a consistent copy
    assert at_start * BATCH <= written <= at_backup * BATCH
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        live = session.query(Reading).filter(Reading.meter_id == "m-live").order_by(Reading.seq)
        assert [r.seq for r in live] == list(range(1, written + 1))
    engine.dispose()


def test_restore_refuses_a_damaged_backup_and_keeps_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'anju.db'}"
    migrate.upgrade(url)
    before = digests(url)
    archive = sqlite_backup.backup(tmp_path / "anju.db", tmp_path / "b", datetime.now(UTC))
    damaged = tmp_path / "damaged.db.gz"
    damaged.write_bytes(archive.read_bytes()[:-100])
    with pytest.raises(sqlite_backup.BackupError, match="not a readable backup"):
        sqlite_backup.restore(damaged, tmp_path / "anju.db")
    assert digests(url) == before


def test_rotation_keeps_the_newest_days_and_the_first_of_each_week(tmp_path: Path) -> None:
    start = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # a Monday
    for day in range(40):
        (tmp_path / (start + timedelta(days=day)).strftime(sqlite_backup.NAME)).write_bytes(b"")
    sqlite_backup.rotate(tmp_path, daily=7, weekly=4)
    kept = [taken for taken, _ in sqlite_backup.backups_in(tmp_path)]
    mondays = [start + timedelta(weeks=w) for w in (2, 3, 4, 5)]
    newest = [start + timedelta(days=d) for d in range(33, 40)]
    assert kept == sorted({*mondays, *newest})


def test_postgresql_is_sent_to_pgbackrest(tmp_path: Path) -> None:
    result = anju(tmp_path, "postgresql://anju@db.example.invalid/anju", "backup")
    assert result.exit_code == 1
    assert "backed up with pgBackRest" in result.output
