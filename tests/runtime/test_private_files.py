"""The SQLite files of both halves, and their folders, are private under the usual umask 022."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud import migrate
from edge.store.outbox import Outbox
from runtime.private_files import private_file, private_folder

TS = datetime(2026, 3, 1, tzinfo=UTC)


pytestmark = pytest.mark.usefixtures("usual_umask")


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_cloud_database_file_and_folder(tmp_path: Path) -> None:
    """`anju cloud migrate` on a fresh SQLite URL: the database, its WAL and the folders made
    for it are the service user's alone."""
    db = tmp_path / "var" / "data" / "anju.db"
    migrate.upgrade(f"sqlite:///{db}")
    assert mode(db) == 0o600
    assert mode(tmp_path / "var") == mode(db.parent) == 0o700
    wal = db.with_name("anju.db-wal")
    if wal.exists():
        assert mode(wal) == 0o600


def test_gateway_store_file_and_folder(tmp_path: Path) -> None:
    store = tmp_path / "store" / "gateway.db"
    box = Outbox(store)
    try:
        box.append("reading", [{"meter": "m-1", "point": "energy", "value": 1.0, "ts": TS}])
        assert mode(store) == 0o600
        assert mode(store.parent) == 0o700
        assert mode(store.with_name("gateway.db-wal")) == 0o600  # open: WAL in use
    finally:
        box.close()


def test_existing_files_and_folders_keep_their_mode(tmp_path: Path) -> None:
    """An installer's choices stand: only what we create is made private."""
    tmp_path.chmod(0o750)
    shared = tmp_path / "kept.db"
    shared.write_bytes(b"")
    shared.chmod(0o640)
    private_file(shared)
    private_folder(tmp_path)
    assert (mode(tmp_path), mode(shared)) == (0o750, 0o640)
