"""`anju cloud backup | restore`, `anju cloud keys backup | restore | check` (docs/backup.md)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from cloud.config import Settings

_PASSPHRASE_FILE = click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the passphrase from the first line of FILE (a timer, a vault) instead of asking.",
)


@click.command("backup")
@click.option("--to", "dest", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Backup folder [<data dir>/backups].")  # fmt: skip
@click.option("--keep-daily", type=click.IntRange(min=1), default=7, show_default=True,
              help="Newest backups kept.")  # fmt: skip
@click.option("--keep-weekly", type=click.IntRange(min=0), default=5, show_default=True,
              help="Weeks whose first backup is kept.")  # fmt: skip
def backup(dest: Path | None, keep_daily: int, keep_weekly: int) -> None:
    """Back up the SQLite database while the service runs (compressed, rotated).

    PostgreSQL is backed up by pgBackRest (the Ansible cloud role sets it up). The keys are
    not in the database: back them up once with `anju cloud keys backup`, and after each
    rotation.
    """
    from cloud.backup import sqlite as sqlite_backup
    from cloud.config import load_settings

    settings = load_settings()
    db = sqlite_backup.sqlite_path(settings.effective_database_url)
    folder = dest or settings.data_dir / "backups"
    path = sqlite_backup.backup(db, folder, datetime.now(UTC))
    removed = sqlite_backup.rotate(folder, daily=keep_daily, weekly=keep_weekly)
    click.echo(f"backup written to {path} ({path.stat().st_size} bytes)")
    for old in removed:
        click.echo(f"removed {old.name} (past the schedule)")


@click.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask before replacing the database.")
def restore(archive: Path, yes: bool) -> None:
    """Replace the SQLite database with ARCHIVE (stop anju-cloud first; restore the keys
    before: `anju cloud keys restore`)."""
    from cloud.backup import sqlite as sqlite_backup
    from cloud.config import load_settings

    settings = load_settings()
    db = sqlite_backup.sqlite_path(settings.effective_database_url)
    if not yes:
        click.confirm(f"replace the database at {db} with {archive.name}?", abort=True)
    sqlite_backup.restore(archive, db)
    click.echo(f"database at {db} restored from {archive.name}")
    _check_keys(settings)


@click.command("backup")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@_PASSPHRASE_FILE
def keys_backup(out: Path, passphrase_file: Path | None) -> None:
    """Seal the field keys and the command key into OUT under a passphrase (scrypt +
    AES-256-GCM). Keep OUT and the passphrase apart from the database backups."""
    from cloud.app import field_keys_for
    from cloud.backup import keys as key_backup
    from cloud.config import load_settings

    settings = load_settings()
    command_key = settings.command_key_path
    bundle = key_backup.KeyBundle(
        field_keys_for(settings), command_key.read_bytes() if command_key.exists() else None
    )
    passphrase = _passphrase(passphrase_file, confirm=True)
    sealed = key_backup.seal(bundle, passphrase)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(sealed)
    click.echo(f"field keys ({', '.join(bundle.field_keys.keys)}) sealed into {out}")
    if bundle.command_key_pem is None:
        click.echo(f"note: no command key at {command_key}; none sealed")
    else:
        click.echo(f"command key {command_key} sealed into {out}")


@click.command("restore")
@click.argument("sealed", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_PASSPHRASE_FILE
def keys_restore(sealed: Path, passphrase_file: Path | None) -> None:
    """Put the keys sealed in SEALED back where the cloud reads them (before the data)."""
    from cloud.backup import keys as key_backup
    from cloud.config import load_settings
    from cloud.security.crypto import KEY_FILE

    settings = load_settings()
    bundle = key_backup.unseal(sealed.read_bytes(), _passphrase(passphrase_file, confirm=False))
    field_file = settings.data_dir / KEY_FILE
    written = key_backup.install(bundle, field_file, settings.command_key_path)
    for path in written:
        click.echo(f"wrote {path}")
    if not written:
        click.echo("the keys were there already")
    if settings.field_keys:
        click.echo(f"note: ANJU_FIELD_KEYS is set and wins over {field_file}")


@click.command("check")
def keys_check() -> None:
    """Check that the key ring decrypts the personal data in the database (after a restore)."""
    from cloud.config import load_settings

    _check_keys(load_settings())


def _check_keys(settings: Settings) -> None:
    from cloud.app import field_keys_for
    from cloud.backup.check import key_problems
    from cloud.db import make_engine, make_sessionmaker
    from protocols.errors import AnjuError

    keys = field_keys_for(settings)
    engine = make_engine(settings.effective_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            problems = key_problems(session, keys)
    finally:
        engine.dispose()
    for line in problems:
        click.echo(line, err=True)
    if problems:
        raise AnjuError("the keys do not read the data: restore the keys of this backup first")
    click.echo(f"personal data decrypts with the key ring ({', '.join(keys.keys)})")


def _passphrase(path: Path | None, *, confirm: bool) -> str:
    if path is not None:
        lines = path.read_text().splitlines()
        return lines[0] if lines else ""
    text: str = click.prompt("passphrase", hide_input=True, confirmation_prompt=confirm)
    return text
