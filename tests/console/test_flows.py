"""The main flows in a real browser: sign and activate a lease, run billing, see its first
invoice, record a payment and watch AR aging change."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect
from sqlalchemy import select

from cloud.billing.service.reports import ar_aging
from cloud.console.i18n import Texts
from cloud.leases.lifecycle import add_months
from cloud.models import Invoice, Lease, LeaseStatus
from tests.console.conftest import NOW, Console, sign_in

ZH = Texts("zh_CN", ZoneInfo("Asia/Shanghai"))
TODAY = NOW.astimezone(ZH.tz).date()


def draft_lease(console: Console) -> Lease:
    """A first lease (not a renewal), moved to start today so that it may move in now."""
    with console.sessions() as session:
        lease = session.scalars(
            select(Lease)
            .where(Lease.status == LeaseStatus.DRAFT, Lease.renewed_from_id.is_(None))
            .order_by(Lease.id)
        ).first()
        assert lease is not None
        lease.start_date, lease.end_date = TODAY, add_months(TODAY, 12) - timedelta(days=1)
        session.commit()
        session.expunge(lease)
        return lease


def open_balance(console: Console, property_id: int) -> int:
    with console.sessions() as session:
        return sum(r["total_fen"] for r in ar_aging(session, property_id, TODAY))


def test_sign_activate_bill_and_pay(page: Page, console: Console) -> None:
    lease = draft_lease(console)
    sign_in(page, console, "demo-manager")
    expect(page).to_have_url(re.compile(r"/board$"))

    page.goto(f"{console.url}/leases?lease={lease.id}")
    page.get_by_test_id("action-sign").click()
    page.get_by_test_id("action-activate").click()
    expect(page.get_by_test_id("action-end")).to_be_visible()
    with console.sessions() as session:
        assert session.get_one(Lease, lease.id).status is LeaseStatus.ACTIVE

    page.goto(f"{console.url}/billing?property={lease.property_id}")
    before = open_balance(console, lease.property_id)
    expect(page.get_by_test_id("ar-total")).to_contain_text(ZH.money(before))
    page.get_by_test_id("period").fill(TODAY.strftime("%Y-%m"))
    page.get_by_test_id("run-billing").click()
    # The page reloads when the run is done: the open balance then includes the new bills.
    expect(page.get_by_test_id("ar-total")).not_to_contain_text(ZH.money(before))
    with console.sessions() as session:
        invoice = session.scalars(
            select(Invoice).where(Invoice.lease_id == lease.id).order_by(Invoice.id)
        ).first()
        assert invoice is not None
    expect(page.get_by_test_id("invoices")).to_contain_text(invoice.number)
    expect(page.get_by_test_id("runs")).to_contain_text(TODAY.strftime("%Y-%m"))
    billed = open_balance(console, lease.property_id)
    assert billed > before
    expect(page.get_by_test_id("ar-total")).to_contain_text(ZH.money(billed))

    page.get_by_test_id("pay-lease").fill(str(lease.id))
    page.get_by_test_id("pay-amount").fill(f"{invoice.total_fen / 100:.2f}")
    page.get_by_test_id("pay-reference").fill("console test")
    page.get_by_test_id("pay").click()
    paid = billed - invoice.total_fen
    expect(page.get_by_test_id("ar-total")).to_contain_text(ZH.money(paid))
    assert open_balance(console, lease.property_id) == paid

    # A late fee charged on the invoice shows on its row.
    with console.sessions() as session:
        session.get_one(Invoice, invoice.id).late_fee_fen = 1234
        session.commit()
    page.reload()
    expect(page.get_by_test_id("invoices").get_by_text("¥12.34")).to_be_visible()
