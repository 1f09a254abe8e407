"""CSV import over the API on a real app and database: hostile rows are rejected one by one
(line and reason, never the value) while the good rows go in; only roles with data.import
reach it; its progress ends at the file's rows."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from cloud.api import progress as api_progress
from cloud.api.routes import imports
from cloud.models import Role, Unit
from cloud.progress import Board
from tests.cloud.conftest import Api

HEADER = "property,building,code,floor,area_m2,base_rent,layout\n"
GOOD = ["南山公寓,A栋,A-101,1,35.5,1800,一室", "南山公寓,A栋,A-102,1,28,1500,开间"]
SECRET = "440301199001011234"  # a value that must never come back in a reason
HOSTILE = [
    f"南山公寓,A栋,A-103,1,-4,1500,{SECRET}",  # line 4: a negative area
    "南山公寓,A栋,A-1\x0004,1,30,1500,开间",  # line 5: a NUL
    "南山公寓,A栋,A-105,1,30,1500,开间,extra",  # line 6: a value more than the header
    "南山公寓,A栋," + "X" * 200 + ",1,30,1500,开间",  # line 7: a code over its column
    "南山公寓,A栋,A-101,1,35.5,1800,一室",  # line 8: repeats line 2
]
LATE_GOOD = "南山公寓,B栋,B-101,2,60,3200.5,两室"  # line 9: after the hostile rows
CSV = (HEADER + "\n".join([*GOOD, *HOSTILE, LATE_GOOD]) + "\n").encode()


async def send(api: Api, role: Role, kind: str = "units", body: bytes = CSV, **params: Any) -> Any:
    headers = api.as_role(role) | {"Content-Type": "text/csv"}
    return await api.client.post(
        f"/api/v1/imports/{kind}", content=body, params=params, headers=headers
    )


def units(api: Api) -> int:
    with api.sessions() as session:
        return session.scalar(select(func.count()).select_from(Unit)) or 0


@pytest.fixture
def board(monkeypatch: pytest.MonkeyPatch) -> Board:
    fresh = Board()
    monkeypatch.setattr(imports, "BOARD", fresh)
    monkeypatch.setattr(api_progress, "BOARD", fresh)
    return fresh


async def test_hostile_rows_are_rejected_and_the_rest_imported(api: Api, board: Board) -> None:
    before = units(api)
    progress = await api.client.get("/api/v1/imports/progress", headers=api.as_role(Role.ADMIN))
    assert progress.json() is None
    r = await send(api, Role.ADMIN, skip_bad="true")
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["rows"], out["created"], out["rejected"], out["applied"]) == (8, 3, 5, True)
    assert [(x["line"], x["column"]) for x in out["rejected_rows"]] == [
        (4, "area_m2"), (5, "code"), (6, ""), (7, "code"), (8, "code")
    ]  # fmt: skip
    assert out["rejected_rows"][2]["reason"] == "8 values, the header has 7"
    assert SECRET not in r.text
    assert units(api) == before + 3
    done = await api.client.get("/api/v1/imports/progress", headers=api.as_role(Role.ADMIN))
    assert done.json() == {"phase": "done", "done": 8, "total": 8, "finished": True}


async def test_without_skip_bad_or_on_a_dry_run_nothing_is_kept(api: Api, board: Board) -> None:
    before = units(api)
    strict = (await send(api, Role.ADMIN)).json()
    assert (strict["rejected"], strict["applied"]) == (5, False)
    dry = await send(api, Role.ADMIN, body=(HEADER + GOOD[0] + "\n").encode(), dry_run="true")
    assert dry.json()["created"] == 1
    assert dry.json()["applied"] is False
    assert units(api) == before


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.ADMIN])
async def test_only_roles_that_import_reach_it(api: Api, board: Board, role: Role) -> None:
    before = units(api)
    assert (await send(api, role, skip_bad="true")).status_code == 403
    got = await api.client.get("/api/v1/imports/progress", headers=api.as_role(role))
    assert got.status_code == 403
    assert units(api) == before


async def test_a_bad_header_or_an_oversized_file_is_refused_whole(
    api: Api, board: Board, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = await send(api, Role.ADMIN, body=b"property,building\nP,B\n")
    assert bad.status_code == 422
    assert "missing column(s): area_m2, base_rent, code, floor" in bad.text
    ended = board.get(imports.import_key(api.world.users[Role.ADMIN]))
    assert ended is not None
    assert (ended.phase, ended.finished) == ("failed", True)
    monkeypatch.setattr(imports, "MAX_BYTES", len(CSV) - 1)
    assert (await send(api, Role.ADMIN, skip_bad="true")).status_code == 413
