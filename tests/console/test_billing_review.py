"""Finance's review pages in a real browser: usage holds approved or rejected (released at a
corrected quantity) through the API's release route, the rent roll a page at a time; the front
desk reaches neither, whatever URL it types."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from cloud.models import (
    AuditEvent,
    HoldKind,
    Lease,
    LeaseStatus,
    Meter,
    MeterKind,
    UsageHold,
)
from tests.console.conftest import NOW, Console, sign_in

PERIOD = date(2026, 2, 1)


@pytest.fixture(scope="module")
def holds(console: Console) -> dict[str, int]:
    """Two spikes held on an active lease's submeters, by meter code."""
    with console.sessions() as session:
        lease = session.scalars(
            select(Lease).where(Lease.status == LeaseStatus.ACTIVE).order_by(Lease.id)
        ).first()
        assert lease is not None
        meters = session.scalars(
            select(Meter.code)
            .where(Meter.unit_id == lease.unit_id, Meter.kind == MeterKind.SUBMETER)
            .order_by(Meter.code)
        ).all()[:2]
        rows = {
            code: UsageHold(
                property_id=lease.property_id,
                lease_id=lease.id,
                meter_id=code,
                period_start=PERIOD,
                period_end=None,
                kind=HoldKind.USAGE,
                reason="usage 9 times the usual",
                quantity=Decimal("900"),
                released=False,
                created_at=NOW,
            )
            for code in meters
        }
        session.add_all(rows.values())
        session.commit()
        return {code: row.id for code, row in rows.items()}


def open_hold(page: Page, console: Console, meter: str) -> None:
    page.goto(f"{console.url}/billing")
    page.get_by_test_id("holds").get_by_text(meter, exact=True).click()
    page.get_by_test_id("hold-note").fill("checked on site")


def test_finance_approves_one_hold_and_rejects_another(
    page: Page, console: Console, holds: dict[str, int]
) -> None:
    approved, rejected = holds
    sign_in(page, console, "demo-finance")
    expect(page).to_have_url(re.compile(r"/board$"))
    open_hold(page, console, approved)
    page.get_by_test_id("hold-approve").click()
    expect(page.get_by_test_id("holds").get_by_text(approved, exact=True)).to_have_count(0)
    open_hold(page, console, rejected)
    page.get_by_test_id("hold-quantity").fill("12.5")
    page.get_by_test_id("hold-reject").click()
    expect(page.get_by_test_id("holds").get_by_text(rejected, exact=True)).to_have_count(0)
    with console.sessions() as session:
        got = {
            h.meter_id: (h.released, h.quantity)
            for h in session.scalars(select(UsageHold).where(UsageHold.id.in_(holds.values())))
        }
        audited = session.scalar(
            select(func.count()).where(
                AuditEvent.action == "usage_hold.release", AuditEvent.username == "demo-finance"
            )
        )
    assert got == {approved: (True, Decimal("900")), rejected: (True, Decimal("12.5"))}
    assert audited == 2


def test_rent_roll_a_page_at_a_time(page: Page, console: Console) -> None:
    sign_in(page, console, "demo-finance")
    expect(page).to_have_url(re.compile(r"/board$"))
    page.goto(f"{console.url}/billing")
    page.get_by_test_id("rent-roll-link").click()
    expect(page.get_by_test_id("rent-roll-total")).to_contain_text("在租合同")
    rows = page.get_by_test_id("rent-roll").locator("tbody tr")
    expect(rows).to_have_count(50)
    first_page = rows.all_inner_texts()
    page.get_by_text("下一页").click()
    expect(page).to_have_url(re.compile(r"after="))
    expect(page.get_by_text("首页")).to_be_visible()
    expect(rows.first).to_be_visible()
    assert not set(rows.all_inner_texts()) & set(first_page)  # the next rows, none again


def test_front_desk_cannot_reach_finance_by_url(page: Page, console: Console) -> None:
    sign_in(page, console, "demo-front_desk")
    expect(page).to_have_url(re.compile(r"/board$"))
    expect(page.locator(".q-header").get_by_text("账单")).to_have_count(0)
    for path in ("/billing", "/billing/rent-roll?property=1"):
        page.goto(f"{console.url}{path}")
        expect(page.get_by_test_id("refused")).to_be_visible()
        expect(page.get_by_test_id("run-billing")).to_have_count(0)
        expect(page.get_by_test_id("rent-roll")).to_have_count(0)
