"""After a restore: does the key ring read the database? Keys come back before data
(docs/backup.md); this says which are missing or wrong before anything tries to use them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.security import crypto
from cloud.security.crypto import FieldKeys
from cloud.security.rotation import ENCRYPTED_COLUMNS


def key_problems(session: Session, keys: FieldKeys) -> list[str]:
    """One line per key id the data uses that the ring lacks or that does not decrypt (the
    first envelope of each column and key id is opened)."""
    problems = []
    for col in ENCRYPTED_COLUMNS:
        name = f"{col.model.__tablename__}.{col.attr}"
        missing: dict[str, int] = {}
        opened: set[str] = set()
        for row in session.scalars(
            select(col.model).where(getattr(col.model, col.attr).is_not(None))
        ):
            blob: bytes = getattr(row, col.attr)
            kid = crypto.key_id_of(blob)
            if kid not in keys.keys:
                missing[kid] = missing.get(kid, 0) + 1
            elif kid not in opened:
                opened.add(kid)
                try:
                    crypto.decrypt(keys, blob, context=col.context(row))
                except crypto.DecryptionError:
                    problems.append(f"{name}: key {kid!r} in the ring does not decrypt its data")
        problems += [
            f"{name}: {n} values under key {k!r}, not in the ring" for k, n in missing.items()
        ]
    return problems
