"""The registry as Mosquitto's password_file and acl_file (`anju cloud broker-auth export`).

Mosquitto reads both at start and again on SIGHUP. Each file is replaced whole (written beside
it, then renamed), so a reload never reads half a file; an unchanged file is not touched, so a
periodic export only asks for a reload when the registry changed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cloud.broker_accounts import BrokerAccount
from cloud.security.broker_credentials import is_exportable
from protocols.mqtt.acl import acl_file_section

HEADER = "# Written by `anju cloud broker-auth export` from the Anju registry; edits are lost.\n"
NEW_FILE_MODE = 0o640  # hashes are not for every local user; Mosquitto reads via its group


@dataclass
class MosquittoAuth:
    password_file: str
    acl_file: str
    exported: list[str] = field(default_factory=list)
    # Hashes Mosquitto cannot check (scrypt, from before): these need `gateway add` again.
    needs_rotation: list[str] = field(default_factory=list)
    no_credential: list[str] = field(default_factory=list)  # registered with --no-credential


def render(accounts: list[BrokerAccount]) -> MosquittoAuth:
    """Only accounts with a hash Mosquitto can check get a password line and an ACL section;
    the rest cannot log in at all (Mosquitto denies users it has no line for)."""
    auth = MosquittoAuth(HEADER, HEADER + "# Nobody has any access not granted below.\n")
    for account in accounts:
        if not account.credential_hash:
            auth.no_credential.append(account.username)
        elif not is_exportable(account.credential_hash):
            auth.needs_rotation.append(account.username)
        else:
            auth.exported.append(account.username)
            auth.password_file += f"{account.username}:{account.credential_hash}\n"
            auth.acl_file += "\n" + acl_file_section(account.username, account.grants)
    return auth


def replace_file(path: Path, text: str) -> bool:
    """Atomically give `path` this content, keeping its mode (and owner, as root); False if it
    had it already."""
    with contextlib.suppress(FileNotFoundError):
        if path.read_text(encoding="utf-8") == text:
            return False
    try:
        old = path.stat()
    except FileNotFoundError:
        old = None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, (old.st_mode & 0o7777) if old else NEW_FILE_MODE)
        if old is not None and os.geteuid() == 0:
            os.chown(tmp, old.st_uid, old.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True
