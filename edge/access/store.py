"""The applied access list in the gateway's SQLite store, secrets sealed at rest.

Each record of the list is a row (`kind`, `id`, JSON `body`); what must not lie in the clear —
a face embedding (biometric data) and a door's offline-code secret — is left out of the body
and kept in `sealed`: a scheme byte, a 24-byte random nonce and the XChaCha20-Poly1305
ciphertext (libsodium), with the record's kind and id as associated data so a sealed value
cannot be moved to another record. A value sealed by another scheme (AES-GCM, before the
scheme byte) does not open: the list is then unreadable, and the cloud's next whole list
replaces it. The key is a
32-byte file, 0600, created beside the store on first use. A whole list or a delta is written
in one transaction with the version, so a power cut leaves the old list or the new one.
The guard state (trusted clock, uses, used codes, keypad failures) is one JSON row beside it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError
from pydantic import ValidationError

from edge.keyfile import read_key
from edge.store.sqlite import connect, transaction
from protocols.access.decide import GuardState
from protocols.access.schema import (
    EMBEDDING_BYTES,
    EMBEDDING_DIM,
    FACES,
    SET_ASIDE,
    AccessList,
    Credential,
    Door,
    Revocation,
    Right,
)
from protocols.errors import ConfigError
from runtime.private_files import FILE_MODE, private_folder

if TYPE_CHECKING:
    from protocols.face.contract import FloatArray

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 24
SCHEME = b"\x01"  # XChaCha20-Poly1305; the first byte of every sealed value
# The guard state's JSON: uses and used codes of the largest list, with room to spare.
MAX_GUARD_BYTES = 16 * 1024 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS access_list (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    gateway_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    issued_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS access_records (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    sealed BLOB,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access_guard (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    state TEXT NOT NULL
);
"""

Record = Door | Credential | Right | Revocation
KINDS: dict[str, type[Record]] = {
    "door": Door,
    "credential": Credential,
    "right": Right,
    "revocation": Revocation,
}
# The field of each kind that is sealed rather than kept in the body.
SEALED = {"door": "code_secret", "credential": "embedding"}


def load_or_create_key(path: Path) -> bytes:
    """The store's sealing key; a new random one (0600) if the file does not exist yet."""
    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return read_key(path, KEY_BYTES, "access store key")
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(KEY_BYTES) + "\n")
    return read_key(path, KEY_BYTES, "access store key")


def _kind(record: Record) -> str:
    if isinstance(record, Door):
        return "door"
    if isinstance(record, Credential):
        return "credential"
    return "right" if isinstance(record, Right) else "revocation"


def _key(record: Record) -> str:
    return record.key if isinstance(record, Revocation) else record.id


class AccessStore:
    """One connection, one lock (calls come from `asyncio.to_thread`'s threads)."""

    def __init__(self, path: Path, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigError(f"the access store key has {len(key)} bytes, not {KEY_BYTES}")
        self._key = key
        self._lock = threading.Lock()
        self._db = connect(path)
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- sealing ------------------------------------------------------------------------

    def _seal(self, kind: str, id_: str, secret: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        aad = f"{kind}/{id_}".encode()
        return (
            SCHEME
            + nonce
            + crypto_aead_xchacha20poly1305_ietf_encrypt(secret, aad, nonce, self._key)
        )

    def _open(self, kind: str, id_: str, sealed: bytes) -> bytes:
        if sealed[:1] != SCHEME:
            raise ValueError("a value sealed by another scheme")
        nonce, ciphertext = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        aad = f"{kind}/{id_}".encode()
        return crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, self._key)

    def _row(self, record: Record, faces: Iterator[bytes]) -> tuple[str, str, str, bytes | None]:
        kind = _kind(record)
        field = SEALED.get(kind)
        secret = getattr(record, field) if field else None
        body = record.model_dump_json(by_alias=True, exclude={field} if field else None)
        id_ = _key(record)
        if secret is None:
            return kind, id_, body, None
        raw = next(faces) if secret == SET_ASIDE else base64.b64decode(secret)
        return kind, id_, body, self._seal(kind, id_, raw)

    def _rows(
        self, update: AccessList, faces: bytes | bytearray
    ) -> Iterator[tuple[str, str, str, bytes | None]]:
        """One row at a time: SQLite takes each before the next is sealed, so 10,000 sealed
        faces never lie in memory together."""
        vectors = (
            bytes(faces[i : i + EMBEDDING_BYTES]) for i in range(0, len(faces), EMBEDDING_BYTES)
        )
        for records in (update.doors, update.credentials, update.rights, update.revocations):
            for record in records:
                yield self._row(record, vectors)
        if next(vectors, None) is not None:
            raise ValueError("more face vectors than face credentials set aside")

    # ---- writing ------------------------------------------------------------------------

    def save(self, applied: AccessList, update: AccessList, faces: bytes | bytearray = b"") -> None:
        """Persist `update` (whole, or a delta) so the store holds `applied`, in one
        transaction. `faces`: the vectors of `update`'s credentials whose embedding was set
        aside when parsed (`signing.parse_body`), in order."""
        if len(faces) % EMBEDDING_BYTES:
            raise ValueError(f"{len(faces)} bytes of face vectors is not whole vectors")
        rows = self._rows(update, faces)
        with self._lock, transaction(self._db):
            db = self._db
            if update.full:
                db.execute("DELETE FROM access_records")
            else:
                removed = update.removed
                db.executemany(
                    "DELETE FROM access_records WHERE kind = ? AND id = ?",
                    [
                        *(("door", i) for i in removed.doors),
                        *(("credential", i) for i in removed.credentials),
                        *(("right", i) for i in removed.rights),
                        *(("revocation", i) for i in removed.revocations),
                    ],
                )
            db.executemany("INSERT OR REPLACE INTO access_records VALUES (?, ?, ?, ?)", rows)
            db.execute(
                "INSERT OR REPLACE INTO access_list VALUES (1, ?, ?, ?)",
                (applied.gateway_id, applied.version, applied.issued_at.isoformat()),
            )

    def save_guard(self, state: GuardState) -> None:
        text = json.dumps(state.to_dict(), separators=(",", ":"))
        with self._lock, transaction(self._db):
            self._db.execute("INSERT OR REPLACE INTO access_guard VALUES (1, ?)", (text,))

    # ---- reading ------------------------------------------------------------------------

    def _records(self) -> list[tuple[str, str, str, bytes | None]]:
        return self._db.execute("SELECT kind, id, body, sealed FROM access_records").fetchall()

    def load(self, faces: bytearray | None = None) -> AccessList | None:
        """The applied list, or None (none yet, or unreadable: logged, and the cloud's next
        whole list replaces it). With `faces`, face vectors are set aside there as
        `signing.parse_body` does: decisions need none, galleries read them with `faces`."""
        with self._lock:
            head = self._db.execute(
                "SELECT gateway_id, version, issued_at FROM access_list"
            ).fetchone()
            if head is None:
                return None
            try:
                parts = self._parts(self._records(), faces)
            except (CryptoError, ValueError, KeyError, sqlite3.Error) as exc:
                log.warning(
                    "the stored access list does not load (%s); waiting for a whole list", exc
                )
                return None
        try:
            return AccessList(gateway_id=head[0], version=head[1], issued_at=head[2], **parts)
        except ValidationError as exc:
            log.warning("the stored access list is not valid (%s); waiting for a whole list", exc)
            return None

    def _parts(
        self, rows: Iterable[tuple[str, str, str, bytes | None]], faces: bytearray | None
    ) -> dict[str, list[Any]]:
        """Each row checked again: its seal opens, its record is valid."""
        parts: dict[str, list[Any]] = {"door": [], "credential": [], "right": [], "revocation": []}
        context = {FACES: faces}
        for kind, id_, body, sealed in rows:
            data = json.loads(body)
            field = SEALED.get(kind)
            if field is not None and sealed is not None:
                data[field] = base64.b64encode(self._open(kind, id_, sealed)).decode()
            parts[kind].append(KINDS[kind].model_validate(data, context=context))
        return {
            "doors": parts["door"],
            "credentials": parts["credential"],
            "rights": parts["right"],
            "revocations": parts["revocation"],
        }

    def faces(self, ids: Sequence[str]) -> FloatArray:
        """The face vectors of credentials `ids`, unsealed into one float32 matrix, a row per
        id in that order (KeyError for an id without one). Rows are read one at a time."""
        import numpy as np  # noqa: PLC0415 - only a gateway with doors loads numpy

        row_of = {id_: i for i, id_ in enumerate(ids)}
        matrix = np.empty((len(row_of), EMBEDDING_DIM), dtype=np.float32)
        found = 0
        with self._lock:
            cursor = self._db.execute(
                "SELECT id, sealed FROM access_records WHERE kind = 'credential'"
                " AND sealed IS NOT NULL"
            )
            for id_, sealed in cursor:
                row = row_of.get(id_)
                if row is not None:
                    opened = self._open("credential", id_, sealed)
                    matrix[row] = np.frombuffer(opened, dtype="<f4")
                    found += 1
        if found != len(row_of):
            raise KeyError(f"{len(row_of) - found} face credentials have no sealed vector")
        return matrix

    def load_guard(self) -> GuardState:
        """The saved guard state; a fresh one if none or unreadable (logged)."""
        with self._lock:
            row = self._db.execute("SELECT state FROM access_guard").fetchone()
        if row is None:
            return GuardState()
        if len(row[0]) > MAX_GUARD_BYTES:
            log.error("the saved door state is %d bytes; starting afresh", len(row[0]))
            return GuardState()
        try:
            return GuardState.from_dict(json.loads(row[0]))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("the saved door state does not load (%s); starting afresh", exc)
            return GuardState()
