"""SQLite backups: consistent copies taken while the service writes, compressed and rotated.

sqlite3's online backup API copies pages under the database's own locks, in one read
transaction, so a writer in another process never leaves a torn copy (a file copy of a WAL
database can). Each backup is a full copy (a SQLite deployment is small by design), named by
its UTC time. Rotation keeps the newest `daily` copies and the first copy of each of the newest
`weekly` ISO weeks: the schedule pgBackRest keeps for PostgreSQL (docs/backup.md).
"""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import tempfile
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from protocols.errors import AnjuError
from runtime.private_files import private_file, private_folder

NAME = "anju-%Y%m%dT%H%M%SZ.db.gz"
_CHUNK = 1 << 20


class BackupError(AnjuError):
    pass


def sqlite_path(url: str) -> Path:
    """The file of a SQLite database URL; other databases are backed up by pgBackRest."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        raise BackupError(
            f"{parsed.get_backend_name()} is backed up with pgBackRest, not by anju"
            " (docs/backup.md)"
        )
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory database has nothing to back up")
    return Path(parsed.database)


def backup(db: Path, dest_dir: Path, now: datetime) -> Path:
    """Copy `db` (live) into `dest_dir` as a gzip file of mode 0600; returns its path."""
    if not db.exists():
        raise BackupError(f"no database at {db}")
    private_folder(dest_dir)
    target = dest_dir / now.astimezone(UTC).strftime(NAME)
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".backup-") as tmp:
        copy = Path(tmp) / "copy.db"
        with (
            closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as src,
            closing(sqlite3.connect(copy)) as dst,
        ):
            src.backup(dst)  # all pages in one step: one consistent snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
        packed = Path(tmp) / "copy.db.gz"
        with copy.open("rb") as fin, gzip.open(packed, "wb", compresslevel=6) as fout:
            shutil.copyfileobj(fin, fout, _CHUNK)
        _fsync(packed)
        packed.chmod(0o600)
        packed.replace(target)
    return target


def backups_in(dest_dir: Path) -> list[tuple[datetime, Path]]:
    """The backups in `dest_dir`, oldest first."""
    found = []
    for path in dest_dir.glob("anju-*.db.gz"):
        try:
            taken = datetime.strptime(path.name, NAME).replace(tzinfo=UTC)
        except ValueError:
            continue
        found.append((taken, path))
    return sorted(found)


def rotate(dest_dir: Path, *, daily: int, weekly: int) -> list[Path]:
    """Delete the backups the schedule no longer keeps; returns them."""
    found = backups_in(dest_dir)
    keep = {path for _, path in found[-daily:]} if daily > 0 else set()
    first_of_week: dict[tuple[int, int], Path] = {}
    for taken, path in found:
        first_of_week.setdefault(taken.isocalendar()[:2], path)
    weeks = sorted(first_of_week)
    keep |= {first_of_week[w] for w in weeks[-weekly:]} if weekly > 0 else set()
    removed = [path for _, path in found if path not in keep]
    for path in removed:
        path.unlink()
    return removed


def restore(archive: Path, db: Path) -> None:
    """Replace the database at `db` with the backup `archive` (the service stopped).

    The copy is checked before anything is touched, then written through the backup API, so
    a WAL file next to the database cannot replay old pages over it.
    """
    private_folder(db.parent)
    with tempfile.TemporaryDirectory(dir=db.parent, prefix=".restore-") as tmp:
        copy = Path(tmp) / "copy.db"
        try:
            with gzip.open(archive, "rb") as fin, copy.open("wb") as fout:
                shutil.copyfileobj(fin, fout, _CHUNK)
        except (OSError, EOFError) as exc:
            raise BackupError(f"{archive}: not a readable backup ({exc})") from None
        with closing(sqlite3.connect(copy)) as src:
            try:
                verdict = src.execute("PRAGMA integrity_check").fetchone()[0]
                src.execute("SELECT version_num FROM alembic_version").fetchone()
            except sqlite3.DatabaseError as exc:
                raise BackupError(f"{archive}: not an Anju database ({exc})") from None
            if verdict != "ok":
                raise BackupError(f"{archive}: the copy is damaged ({verdict})")
            if not db.exists():  # a lost database may have left its WAL behind
                for side in ("-wal", "-shm"):
                    Path(f"{db}{side}").unlink(missing_ok=True)
                private_file(db)  # personal data: 0600 whatever the umask
            with closing(sqlite3.connect(db)) as dst:
                src.backup(dst)
                dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
