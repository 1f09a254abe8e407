"""Key rotation: re-encrypt every field envelope that is not under the current key.

`ENCRYPTED_COLUMNS` lists every encrypted column with the associated-data context its rows use;
an area that adds one registers it here so `anju cloud rotate-keys` covers it (and the restore
check, `cloud.backup.check`, opens it). Rows are walked in primary-key order, a batch at a time,
so a table keyed on several columns (the kept access lists) rotates like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect, select, tuple_
from sqlalchemy.orm import Session

from cloud.models import AccessListVersion, AlarmSubscription, Door, FaceEnrollment, Tenant
from cloud.security import contexts, crypto
from cloud.security.crypto import FieldKeys
from cloud.security.pii import PII_FIELDS, context


@dataclass(frozen=True)
class EncryptedColumn:
    model: Any
    attr: str
    context: Callable[[Any], bytes]


def _tenant_context(field: str) -> Callable[[Any], bytes]:
    return lambda _row: context(field).encode()  # type: ignore[arg-type]


ENCRYPTED_COLUMNS: tuple[EncryptedColumn, ...] = (
    *(EncryptedColumn(Tenant, f"{f}_enc", _tenant_context(f)) for f in PII_FIELDS),
    EncryptedColumn(
        FaceEnrollment, "embeddings_enc", lambda row: contexts.face_embeddings(row.tenant_id)
    ),
    EncryptedColumn(
        AlarmSubscription,
        "secret_enc",
        lambda row: contexts.alarm_secret(row.user_id),
    ),
    # A door's offline-code secret: codes issued before a rotation still open after it.
    EncryptedColumn(Door, "secret_enc", lambda row: contexts.door_secret(row.gateway_id, row.code)),
    # The compiled lists a gateway may still hold (embeddings, door secrets): the next delta
    # is computed against one of them.
    EncryptedColumn(
        AccessListVersion, "body_enc", lambda row: contexts.access_list(row.gateway_id, row.version)
    ),
)


def _batches(session: Session, col: EncryptedColumn, batch: int) -> Iterator[list[Any]]:
    """The rows with a value in `col`, `batch` at a time in primary-key order (keyset paging:
    the caller may commit between batches)."""
    mapper = inspect(col.model)
    names = [mapper.get_property_by_column(c).key for c in mapper.primary_key]
    key = tuple_(*mapper.primary_key)
    last: tuple[Any, ...] | None = None
    while True:
        query = select(col.model).where(getattr(col.model, col.attr).is_not(None))
        if last is not None:
            query = query.where(key > tuple_(*last))
        rows = list(session.scalars(query.order_by(*mapper.primary_key).limit(batch)))
        if not rows:
            return
        last = tuple(getattr(rows[-1], n) for n in names)
        yield rows


def rotate(session: Session, keys: FieldKeys, *, batch: int = 500) -> dict[str, int]:
    """Re-encrypt under `keys.current` and recompute blind indexes with `keys.index_key`; returns
    rows re-encrypted per column. Commits per batch so a large table holds no long transaction;
    safe to re-run after an interruption."""
    done: dict[str, int] = {}
    for col in ENCRYPTED_COLUMNS:
        name = f"{col.model.__tablename__}.{col.attr}"
        done[name] = 0
        for rows in _batches(session, col, batch):
            for row in rows:
                blob: bytes = getattr(row, col.attr)
                ctx = col.context(row)
                bidx_attr = col.attr.removesuffix("_enc") + "_bidx"
                if crypto.key_id_of(blob) == keys.current and not hasattr(row, bidx_attr):
                    continue
                plain = crypto.decrypt(keys, blob, context=ctx)
                if hasattr(row, bidx_attr):  # the index key may have changed too
                    bidx = crypto.blind_index(keys, plain.decode(), context=ctx)
                    setattr(row, bidx_attr, bidx)
                if crypto.key_id_of(blob) != keys.current:
                    setattr(row, col.attr, crypto.encrypt(keys, plain, context=ctx))
                    done[name] += 1
            session.commit()
    return done


def new_key_ring(old: FieldKeys | None, now_id: str) -> FieldKeys:
    """The ring after adding a fresh current key. Leaving the development placeholder also
    replaces its (public) blind-index key; otherwise the index key stays."""
    if old is None:
        return FieldKeys(current=now_id, keys={now_id: crypto.generate_key()},
                         index_key=crypto.generate_key())  # fmt: skip
    index_key = crypto.generate_key() if old.is_development else old.index_key
    return FieldKeys(current=now_id, keys={now_id: crypto.generate_key(), **old.keys},
                     index_key=index_key)  # fmt: skip


def stale_count(session: Session, keys: FieldKeys) -> int:
    """Envelopes still under an old key (0 after a complete rotation)."""
    n = 0
    for col in ENCRYPTED_COLUMNS:
        for blob in session.scalars(select(getattr(col.model, col.attr))):
            if blob is not None and crypto.key_id_of(blob) != keys.current:
                n += 1
    return n
