"""The import page in a real browser: a tenants file with hostile rows is uploaded, the bar
shows the rows done while the import is held part-way (at the reporting seam; the import is
real), then the result lists each rejected row; roles without data.import cannot reach it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from cloud.api.routes.imports import import_key
from cloud.importer import load
from cloud.models import Property, Tenant, User
from tests.cloud.world import cn_id
from tests.console.conftest import Console, sign_in
from tests.console.gate import HOLD_S, Gate, gated

CHUNK = 5  # rows per chunk here, so a small file reports progress part-way
SECRET = "13912345678"  # a value of a rejected row: it must not be shown


def tenants_csv(prop: str) -> tuple[bytes, int]:
    """Twelve good tenants and five hostile rows among them; (file, rows)."""
    good = [f"IMP-{n},{prop},导入租客{n},{cn_id(900 + n)},1380013{n:04d}" for n in range(12)]
    hostile = [
        f"IMP-X1,{prop},坏身份证,110101199001019990,{SECRET}",  # line 4: check character
        f"IMP-X2,{prop},空\x00字符,{cn_id(950)},",  # line 7: a NUL
        f"IMP-X3,{prop},多一列,{cn_id(951)},,extra",  # line 10: a value too many
        f"IMP-X4,{prop},{'长' * 300},{cn_id(952)},",  # line 13: a name over its column
        f"IMP-0,{prop},重复,{cn_id(953)},",  # line 16: repeats line 2's external_ref
    ]
    rows = good[:2] + hostile[:1] + good[2:4] + hostile[1:2] + good[4:6] + hostile[2:3]
    rows += good[6:8] + hostile[3:4] + good[8:10] + hostile[4:] + good[10:]
    text = "external_ref,property,name,id_number,phone\n" + "\n".join(rows) + "\n"
    return text.encode(), len(rows)


@pytest.fixture
def gate(console: Console, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    with console.sessions() as session:
        admin = session.scalars(select(User.id).where(User.username == "demo-admin")).one()
    monkeypatch.setattr(load, "CHUNK", CHUNK)
    with gated(monkeypatch, Gate(import_key(admin), "rows", at=2 * CHUNK)) as held:
        yield held


def test_upload_shows_progress_then_the_rejected_rows(
    page: Page, console: Console, gate: Gate
) -> None:
    with console.sessions() as session:
        prop = session.scalars(select(Property.name).order_by(Property.id)).first()
        assert prop is not None
    data, rows = tenants_csv(prop)
    sign_in(page, console, "demo-admin")
    page.wait_for_url(re.compile(r"/board$"))
    page.get_by_test_id("menu-import").click()
    page.get_by_test_id("import-kind").click()
    page.get_by_role("option", name="租客").click()
    page.get_by_test_id("import-upload").locator("input[type=file]").set_input_files(
        files=[{"name": "tenants.csv", "mimeType": "text/csv", "buffer": data}]
    )
    assert gate.reached.wait(HOLD_S), "the import never reported its second chunk"
    expect(page.get_by_test_id("import-progress")).to_have_text(f"10 / {rows} 行")
    gate.release.set()
    expect(page.get_by_test_id("import-progress")).to_have_text(f"{rows} / {rows} 行")
    expect(page.get_by_test_id("import-result")).to_have_text(
        f"共 {rows} 行：新增 12，已存在 0，拒绝 5；已导入"
    )
    table = page.get_by_test_id("import-rejected")
    expect(table.locator("tbody tr")).to_have_count(5)
    for n, (line, reason) in enumerate(
        [
            (4, "check character does not match"),
            (7, "contains a NUL character"),
            (10, "6 values, the header has 5"),
            (13, "is longer than"),
            (16, "repeats an earlier row of the file"),
        ]
    ):
        cells = table.locator("tbody tr").nth(n).locator("td")
        expect(cells.first).to_have_text(str(line))
        expect(cells.last).to_contain_text(reason)
    expect(table).not_to_contain_text(SECRET)
    with console.sessions() as session:
        imported = session.scalar(
            select(func.count()).select_from(Tenant).where(Tenant.external_ref.like("IMP-%"))
        )
    assert imported == 12


@pytest.mark.parametrize("username", ["demo-manager", "demo-front_desk", "demo-finance"])
def test_roles_without_import_rights_cannot_reach_it(
    page: Page, console: Console, username: str
) -> None:
    sign_in(page, console, username)
    page.wait_for_url(re.compile(r"/board$"))
    expect(page.get_by_test_id("menu-import")).to_have_count(0)
    page.goto(f"{console.url}/import")
    expect(page.get_by_test_id("refused")).to_be_visible()
    expect(page.get_by_test_id("import-upload")).to_have_count(0)
