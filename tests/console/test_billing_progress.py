"""A billing run's progress in a real browser: the run is held half-way through its leases (at
the reporting seam, the run itself is real), the page and the API both show where it stands,
and once let go the bar ends at the total."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from cloud.models import BillingRun, Lease
from cloud.progress import billing_key
from tests.console.conftest import Console, sign_in
from tests.console.gate import HOLD_S, Gate, gated

PERIOD = "2026-05"  # a month nothing else in the suite bills


def busiest_property(console: Console) -> tuple[int, int]:
    with console.sessions() as session:
        found = session.execute(
            select(Lease.property_id, func.count())
            .group_by(Lease.property_id)
            .order_by(func.count().desc(), Lease.property_id)
        ).first()
        assert found is not None
        return found[0], found[1]


@pytest.fixture
def gate(console: Console, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    pid, leases = busiest_property(console)
    assert leases >= 20, "the demo property should have leases enough to show progress"
    with gated(monkeypatch, Gate(billing_key(pid, PERIOD), "rent", at=5)) as held:
        yield held


def test_run_shows_progress_to_the_end(page: Page, console: Console, gate: Gate) -> None:
    pid = int(gate.key.split(":")[1])
    sign_in(page, console, "demo-manager")
    page.wait_for_url(re.compile(r"/board$"))
    page.goto(f"{console.url}/billing?property={pid}")
    page.get_by_test_id("period").fill(PERIOD)
    page.get_by_test_id("run-billing").click()

    assert gate.reached.wait(HOLD_S), "the run never reported its fifth lease"
    assert gate.total > gate.at
    # Held mid-run: the bar shows the rent phase half done, and so does the API.
    expect(page.get_by_test_id("run-progress")).to_have_text(f"租金：5 / {gate.total}")
    api = page.request.get(
        f"{console.url}/api/v1/billing-runs/progress?property_id={pid}&period={PERIOD}"
    )
    assert api.ok
    assert api.json() == {"phase": "rent", "done": 5, "total": gate.total, "finished": False}
    # A second tab on the same property and month sees the same run.
    other = page.context.new_page()
    other.goto(f"{console.url}/billing?property={pid}&period={PERIOD}")
    expect(other.get_by_test_id("run-progress")).to_have_text(f"租金：5 / {gate.total}")

    gate.release.set()
    expect(page.get_by_test_id("run-progress")).to_have_text(re.compile(r"^已完成："))
    with console.sessions() as session:
        run = session.scalars(
            select(BillingRun).where(BillingRun.property_id == pid, BillingRun.period == PERIOD)
        ).one()
        invoices = run.invoices_created
    assert invoices > 0
    expect(page.get_by_test_id("run-progress")).to_have_text(f"已完成：{invoices} / {invoices}")
    expect(other.get_by_test_id("run-progress")).to_have_text(f"已完成：{invoices} / {invoices}")
    final = page.request.get(
        f"{console.url}/api/v1/billing-runs/progress?property_id={pid}&period={PERIOD}"
    ).json()
    assert final == {"phase": "done", "done": invoices, "total": invoices, "finished": True}
