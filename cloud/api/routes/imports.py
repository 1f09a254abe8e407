"""CSV import over the API: units, then tenants, then leases from an old system's file into the
caller's organisation (`cloud.importer`; `anju cloud import` does the same from a shell).

Organisation-wide (a units file may add properties and buildings), so only roles with
`data.import`. A bad row never stops the import: it is counted and listed (line, column,
reason; never its value) and, with `skip_bad`, left out while the good rows go in.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from cloud.api.deps import KeysDep, NowDep, SessionDep, guard
from cloud.api.problems import ProblemError
from cloud.api.progress import ProgressOut, latest
from cloud.importer.csvfile import CsvError, Lines, count_rows, detect
from cloud.importer.load import Kind, RowError, import_csv
from cloud.models import Organisation
from cloud.progress import BOARD
from cloud.security import audit
from cloud.security.authz import Permission, Principal
from cloud.security.crypto import FieldKeys

router = APIRouter(tags=["import"])
P = Permission
MAX_BYTES = 64 * 1024 * 1024  # one upload; bigger files go through `anju cloud import`
MAX_LISTED = 1000  # rejected rows listed in an answer (`rejected` counts them all)


class Rejected(BaseModel):
    line: int = Field(description="The file's line where the row starts (the header is 1).")
    column: str = Field(description="The column at fault; empty when the row as a whole is.")
    reason: str


class ImportOut(BaseModel):
    kind: Kind
    encoding: str
    rows: int
    created: int
    unchanged: int = Field(description="Rows stored already (a re-import creates nothing).")
    rejected: int
    applied: bool = Field(description="Whether the good rows were kept.")
    rejected_rows: list[Rejected] = Field(description=f"The first {MAX_LISTED} rejected rows.")


def import_key(user_id: int) -> str:
    return f"import:{user_id}"


@router.post("/imports/{kind}", responses={413: {}, 422: {}})
def import_rows(
    kind: Kind,
    body: Annotated[bytes, Body(media_type="text/csv", description="The CSV file.")],
    me: Annotated[Principal, guard(P.DATA_IMPORT, "org")],
    session: SessionDep,
    keys: KeysDep,
    now: NowDep,
    encoding: Literal["auto", "utf-8", "gbk"] = "auto",
    dry_run: Annotated[bool, Query(description="Check every row; keep nothing.")] = False,
    skip_bad: Annotated[bool, Query(description="Keep the good rows when some are bad.")] = False,
) -> ImportOut:
    """Import one file in one transaction: kept when every row is good (or `skip_bad`), else
    nothing is. Its progress (rows done of the file's rows) is at `GET /imports/progress`."""
    if len(body) > MAX_BYTES:
        raise ProblemError(413, f"the file is over {MAX_BYTES // 2**20} MB; use anju cloud import")
    with BOARD.track(import_key(me.user_id)) as progress:
        f = io.BytesIO(body)
        chosen = detect(f) if encoding == "auto" else encoding
        total = count_rows(Lines(f, chosen))
        f.seek(0)
        progress("rows", 0, total)
        out = _import(session, keys, me, kind, Lines(f, chosen), now,
                      on_rows=lambda n: progress("rows", n, total))  # fmt: skip
        out.applied = not dry_run and (out.rejected == 0 or skip_bad)
        if not out.applied:
            session.rollback()
        audit.record(session, me, "data.import", now, target_type="import", target_id=kind,
                     detail={"rows": out.rows, "created": out.created, "rejected": out.rejected,
                             "applied": out.applied})  # fmt: skip
        session.commit()
    return out


def _import(
    session: Session,
    keys: FieldKeys,
    me: Principal,
    kind: Kind,
    lines: Lines,
    now: datetime,
    *,
    on_rows: Callable[[int], None],
) -> ImportOut:
    listed: list[Rejected] = []

    def reject(err: RowError) -> None:
        if len(listed) < MAX_LISTED:
            listed.append(Rejected(line=err.line, column=err.column, reason=err.reason))

    org = session.get_one(Organisation, me.org_id)
    try:
        report = import_csv(session, keys, org, kind, lines, now=now, on_error=reject,
                            on_rows=on_rows)  # fmt: skip
    except CsvError as exc:  # the header, or a chunk the database refused: nothing is kept
        session.rollback()
        raise ProblemError(422, str(exc)) from None
    return ImportOut(kind=kind, encoding=lines.encoding, rows=report.rows, created=report.created,
                     unchanged=report.unchanged, rejected=report.bad, applied=False,
                     rejected_rows=listed)  # fmt: skip


@router.get("/imports/progress")
def import_progress(me: Annotated[Principal, guard(P.DATA_IMPORT, "self")]) -> ProgressOut | None:
    """How far the caller's import has got while it runs (rows done of the file's rows), and
    how their latest one ended; null if they have not imported since this process started."""
    return latest(import_key(me.user_id))
