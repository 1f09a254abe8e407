"""Keyset pagination (`?after=<id>&limit=N` → `next_after`, None on the last page) and id types.

Integer ids page with `Page`; records keyed by a string (meters, gateways) with `KeyPage`.
A newest-first time series (readings) pages with `fetch_newest`: an opaque cursor over (ts, id),
since many rows share a timestamp and a cursor on ts alone would skip them; a list ordered by a
text column (the rent roll by unit code) likewise over (text, id) with `encode_key`.
A list route takes `page: PageQ` (`KeyPageQ`) and answers with `page_of` (`fetch_page`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from cloud.api.problems import ProblemError
from protocols.text import text_fault

T = TypeVar("T")
K = TypeVar("K", int, str)
LimitQ = Annotated[int, Query(ge=1, le=200, description="Page size.")]
AfterQ = Annotated[int | None, Query(ge=0, le=2**31 - 1, description="Rows with id > after.")]
KeyAfterQ = Annotated[str | None, Query(max_length=64, description="Rows with id > after.")]


@dataclass(frozen=True)
class PageQuery:
    """`?after=<id>&limit=N` of a list route."""

    after: AfterQ = None
    limit: LimitQ = 50


@dataclass(frozen=True)
class KeyPageQuery:
    """`?after=<string id>&limit=N` of a list of records keyed by a string."""

    after: KeyAfterQ = None
    limit: LimitQ = 50


PageQ = Annotated[PageQuery, Depends()]
KeyPageQ = Annotated[KeyPageQuery, Depends()]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_after: int | None


class KeyPage(BaseModel, Generic[T]):
    """A page of records keyed by a string id: send `next_after` back as `after`."""

    items: list[T]
    next_after: str | None


def starts_with(session: Session, column: Any, prefix: str) -> Any:
    """A prefix match that can use an index: a code-point range on SQLite (BINARY collation),
    LIKE 'p%' on PostgreSQL (served by a text_pattern_ops index)."""
    if session.get_bind().dialect.name == "sqlite" and ord(prefix[-1]) < 0x10FFFF:
        upper = prefix[:-1] + next_char(prefix[-1])
        return (column >= prefix) & (column < upper)
    return column.startswith(prefix, autoescape=True)


def next_char(char: str) -> str:
    """The next character UTF-8 can encode: U+D7FF is followed by U+E000, since the surrogates
    between them are not text (SQLite refuses them). UTF-8 byte order is code-point order, so
    the range stays exact."""
    return "\ue000" if char == "\ud7ff" else chr(ord(char) + 1)


def fetch_page(
    session: Session, query: Select[Any], id_column: Any, after: K | None, limit: int
) -> tuple[list[Any], K | None]:
    """Rows ordered by id after the cursor; one extra row tells whether a next page exists."""
    if after is not None:
        query = query.where(id_column > after)
    rows = list(session.scalars(query.order_by(id_column).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (getattr(rows[-1], id_column.key) if more else None)


CursorQ = Annotated[
    str | None, Query(max_length=128, description="`next_after` of the page before.")
]


def fetch_newest(
    session: Session,
    query: Select[Any],
    ts_column: Any,
    id_column: Any,
    after: str | None,
    *,
    limit: int,
) -> tuple[list[Any], str | None]:
    """Rows newest first by (ts, id) after an opaque cursor; one extra row tells whether a next
    page exists."""  # fmt: skip
    if after is not None:
        ts, row_id = decode_cursor(after)
        older = or_(ts_column < ts, and_(ts_column == ts, id_column < row_id))
        query = query.where(older)
    ordered = query.order_by(ts_column.desc(), id_column.desc()).limit(limit + 1)
    rows = list(session.scalars(ordered))
    more = len(rows) > limit
    rows = rows[:limit]
    if not more:
        return rows, None
    last = rows[-1]
    return rows, encode_cursor(getattr(last, ts_column.key), getattr(last, id_column.key))


def encode_cursor(ts: datetime, row_id: int) -> str:
    """(ts, id) as an opaque token; a naive ts (SQLite) is UTC."""
    aware = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    raw = f"{aware.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


INVALID_CURSOR = "invalid cursor: send back `next_after` as it came"


def decode_cursor(token: str) -> tuple[datetime, int]:
    """The (ts, id) of a cursor; anything not made by `encode_cursor` is a 422."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        ts_text, id_text = raw.split("|")
        ts, row_id = datetime.fromisoformat(ts_text), int(id_text)
    except (ValueError, binascii.Error) as exc:
        raise ProblemError(422, INVALID_CURSOR) from exc
    if ts.tzinfo is None or not 0 <= row_id <= MAX_ID:
        raise ProblemError(422, INVALID_CURSOR)
    return ts, row_id


KeyCursorQ = Annotated[
    str | None, Query(max_length=512, description="`next_after` of the page before.")
]


def encode_key(text: str, row_id: int) -> str:
    """(text, id) as an opaque token: a keyset on a text column that many rows may share."""
    raw = json.dumps([text, row_id], ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_key(token: str) -> tuple[str, int]:
    """The (text, id) of a token; anything not made by `encode_key` is a 422."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        text, row_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ProblemError(422, INVALID_CURSOR) from exc
    if not isinstance(text, str) or type(row_id) is not int or not 0 <= row_id <= MAX_ID:
        raise ProblemError(422, INVALID_CURSOR)
    if text_fault(text) is not None:  # a forged token's NUL or lone surrogate: a 500 in SQL
        raise ProblemError(422, INVALID_CURSOR)
    return text, row_id


def page_of(
    session: Session,
    query: Select[Any],
    id_column: Any,
    page: PageQuery,
    out: Callable[[Any], T],
) -> Page[T]:
    """The list route's answer: one page of `query` by id, each row through `out`."""
    rows, nxt = fetch_page(session, query, id_column, page.after, page.limit)
    return Page(items=[out(r) for r in rows], next_after=nxt)


MAX_ID = 2**31 - 1  # ids are 32-bit on every database we run; larger ones are simply invalid
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
BodyId = Annotated[int, Field(ge=1, le=MAX_ID)]
IdQ = Annotated[int | None, Query(ge=1, le=MAX_ID)]
