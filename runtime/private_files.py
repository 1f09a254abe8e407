"""Files that hold personal data or secrets: their folder 0700 when we create it, the file 0600,
whatever the umask (SQLite creates a database 0644 under the usual 022, and its -wal and -shm
files take the database file's mode)."""

from __future__ import annotations

import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> None:
    """Create `path` and its missing parents with mode 0700; existing folders keep their mode
    (an installer may have set it)."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
        folder.chmod(FOLDER_MODE)


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 (SQLite takes an empty file for a new database);
    an existing file is left as it is."""
    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
