"""Tenants and leases from the console in a real browser: a new tenant (personal numbers sealed
as the API seals them) and their lease, signed with its contract PDF, moved in and renewed; a
move-out with its deposit settlement; a reveal limited to what the role may see."""

from __future__ import annotations

import re
from datetime import date
from zoneinfo import ZoneInfo

from playwright.sync_api import Locator, Page, expect
from sqlalchemy import func, select

from cloud.models import (
    AuditEvent,
    DepositSettlementRow,
    Lease,
    LeaseStatus,
    LeaseTenant,
    Payment,
    Property,
    Tenant,
    Unit,
    UnitStatus,
)
from cloud.security.pii import cn_id_check_char
from tests.console.conftest import Console, sign_in

FIRST17 = "11010119900307123"
ID_NUMBER = FIRST17 + cn_id_check_char(FIRST17)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def vacant_unit(console: Console) -> Unit:
    """A unit no lease has ever named (the seed leaves the last ones vacant)."""
    with console.sessions() as session:
        unit = session.scalars(
            select(Unit)
            .where(
                Unit.status != UnitStatus.MAINTENANCE,
                ~Unit.id.in_(select(Lease.unit_id)),
            )
            .order_by(Unit.id.desc())
        ).first()
        assert unit is not None
        session.expunge(unit)
        return unit


def unit_property(console: Console, unit: Unit) -> str:
    with console.sessions() as session:
        return session.get_one(Property, unit.property_id).name


def active_lease(console: Console, *, with_card: bool = False) -> Lease:
    """The newest active lease that no renewal follows (and, if asked, whose tenant has a card)."""
    with console.sessions() as session:
        query = (
            select(Lease)
            .join(Tenant, Tenant.id == Lease.primary_tenant_id)
            .where(
                Lease.status == LeaseStatus.ACTIVE,
                ~Lease.id.in_(
                    select(Lease.renewed_from_id).where(Lease.renewed_from_id.is_not(None))
                ),
            )
            .order_by(Lease.id.desc())
        )
        if with_card:
            query = query.where(Tenant.bank_card_enc.is_not(None))
        lease = session.scalars(query).first()
        assert lease is not None
        session.expunge(lease)
        return lease


def test_new_tenant_lease_signed_moved_in_and_renewed(page: Page, console: Console) -> None:
    unit = vacant_unit(console)
    sign_in(page, console, "demo-manager")
    expect(page).to_have_url(re.compile(r"/board$"))
    page.goto(f"{console.url}/leases")
    page.get_by_test_id("new-tenant").click()
    page.get_by_test_id("tenant-property").click()
    page.get_by_role("option", name=unit_property(console, unit)).click()
    page.get_by_test_id("tenant-name").fill("控制台租客")
    page.get_by_test_id("tenant-id-number").fill(ID_NUMBER)
    page.get_by_test_id("tenant-phone").fill("13800138000")
    page.get_by_test_id("tenant-save").click()
    # The lease form follows with the new tenant chosen; the number shows masked.
    expect(page.get_by_test_id("lease-tenant")).to_contain_text("控制台租客")
    expect(page.get_by_test_id("lease-tenant")).not_to_contain_text(ID_NUMBER)
    with console.sessions() as session:
        tenant = session.scalars(select(Tenant).where(Tenant.name == "控制台租客")).one()
        assert ID_NUMBER.encode() not in tenant.id_number_enc
        assert tenant.property_id == unit.property_id
    page.get_by_test_id("lease-unit").fill(unit.code)
    page.get_by_test_id("lease-rent").fill("2,350.50")
    page.get_by_test_id("lease-deposit").fill("2350.50")
    page.get_by_test_id("lease-save").click()

    expect(page.get_by_test_id("action-sign")).to_be_visible()
    with console.sessions() as session:
        lease = session.scalars(select(Lease).where(Lease.unit_id == unit.id)).one()
        assert (lease.status, lease.rent_fen, lease.primary_tenant_id) == (
            LeaseStatus.DRAFT,
            235050,
            tenant.id,
        )
    expect(page.locator(".q-dialog").get_by_text("¥2,350.50").first).to_be_visible()
    href = page.get_by_test_id("contract-pdf").get_attribute("href")
    assert href == f"/api/v1/leases/{lease.id}/contract.pdf?lang=zh-CN"
    contract = page.request.get(f"{console.url}{href}")
    assert contract.status == 200
    assert contract.body().startswith(b"%PDF")

    page.get_by_test_id("action-sign").click()
    page.get_by_test_id("action-activate").click()
    # The signed lease's dialog (which offers renew too) is gone before renew is clicked.
    expect(page.get_by_test_id("action-activate")).to_have_count(0)
    expect(page.get_by_test_id("action-terminate")).to_be_visible()
    page.get_by_test_id("action-renew").click()
    page.get_by_test_id("renew-rent").fill("2400")
    page.get_by_test_id("renew-save").click()
    expect(page.get_by_test_id("action-sign")).to_be_visible()
    with console.sessions() as session:
        assert session.get_one(Lease, lease.id).status is LeaseStatus.ACTIVE
        renewal = session.scalars(select(Lease).where(Lease.renewed_from_id == lease.id)).one()
        assert (renewal.status, renewal.rent_fen) == (LeaseStatus.DRAFT, 240000)
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.username == "demo-manager")
        ).all()
    assert {"tenant.create", "lease.create", "lease.sign", "lease.activate", "lease.renew"} <= set(
        actions
    )


def test_terminate_goes_on_to_the_deposit_settlement(page: Page, console: Console) -> None:
    lease = active_lease(console)
    sign_in(page, console, "demo-manager")
    expect(page).to_have_url(re.compile(r"/board$"))
    page.goto(f"{console.url}/leases?lease={lease.id}")
    page.get_by_test_id("action-terminate").click()
    page.get_by_test_id("reason").fill("提前退租")
    page.get_by_test_id("confirm").click()
    page.get_by_test_id("add-deduction").click()
    page.get_by_test_id("deduction-amount-0").fill("100")
    page.get_by_test_id("deduction-reason-0").fill("墙面修补")
    page.get_by_test_id("settle-save").click()
    expect(page.get_by_test_id("settlement-result")).to_contain_text("退还")
    with console.sessions() as session:
        assert session.get_one(Lease, lease.id).status is LeaseStatus.TERMINATED
        row = session.scalars(
            select(DepositSettlementRow).where(DepositSettlementRow.lease_id == lease.id)
        ).one()
    assert [d["amount_fen"] for d in row.deductions if d["kind"] == "damage"] == [10000]
    # Settled once: the lease no longer offers it.
    page.get_by_test_id("settle-close").click()
    expect(page.get_by_test_id("fact-状态")).to_have_text("已解约")
    expect(page.get_by_test_id("settle")).to_have_count(0)


def test_finance_reveals_only_the_bank_card(page: Page, console: Console) -> None:
    lease = active_lease(console, with_card=True)
    sign_in(page, console, "demo-finance")
    expect(page).to_have_url(re.compile(r"/board$"))
    page.goto(f"{console.url}/leases?lease={lease.id}")
    expect(page.get_by_test_id("fact-状态")).to_have_text("生效中")
    expect(page.get_by_test_id("action-terminate")).to_have_count(0)
    masked_id = page.get_by_test_id("fact-证件号码").inner_text()
    masked_card = page.get_by_test_id("fact-银行卡号").inner_text()
    page.get_by_test_id("reveal").click()
    expect(page.get_by_test_id("fact-银行卡号")).not_to_have_text(masked_card)
    expect(page.get_by_test_id("fact-银行卡号")).to_have_text(re.compile(r"^6222\d{15}$"))
    assert page.get_by_test_id("fact-证件号码").inner_text() == masked_id
    with console.sessions() as session:
        reveals = session.scalar(
            select(func.count()).where(
                AuditEvent.username == "demo-finance",
                AuditEvent.action == "tenant.reveal",
                AuditEvent.outcome == "ok",
            )
        )
    assert reveals == 1


def test_deposit_received_is_recorded_and_counted(page: Page, console: Console) -> None:
    with console.sessions() as session:
        lease = session.scalars(
            select(Lease)
            .where(Lease.status == LeaseStatus.ACTIVE, Lease.deposit_fen >= 200)
            .order_by(Lease.id)
        ).first()
        assert lease is not None
        session.expunge(lease)
    half = lease.deposit_fen // 2
    sign_in(page, console, "demo-manager")
    expect(page).to_have_url(re.compile(r"/board$"))
    page.goto(f"{console.url}/leases?lease={lease.id}")
    expect(page.get_by_test_id("fact-已收押金")).to_have_text("¥0.00")
    balance = page.get_by_test_id("fact-欠款余额").inner_text()
    page.get_by_test_id("deposit-receive").click()
    page.get_by_test_id("deposit-amount").fill(f"{half / 100:.2f}")
    page.get_by_test_id("deposit-method").click()
    page.get_by_role("option", name="现金").click()
    page.get_by_test_id("deposit-day").fill("2026-03-08")
    page.get_by_test_id("deposit-save").click()
    # The lease reopens (the closing dialog may still be drawn: the newest is the last).
    expect(page.get_by_test_id("fact-已收押金").last).to_have_text(f"¥{half / 100:,.2f}")
    expect(page.get_by_test_id("fact-欠款余额").last).not_to_have_text(balance)
    with console.sessions() as session:
        deposits = select(Payment).where(Payment.lease_id == lease.id, Payment.deposit)
        payment = session.scalars(deposits).one()
        audited = session.scalar(
            select(func.count()).where(
                AuditEvent.action == "deposit.receive", AuditEvent.target_id == str(payment.id)
            )
        )
    assert (payment.deposit, payment.amount_fen, payment.method) == (True, half, "cash")
    assert payment.received_at.astimezone(SHANGHAI).date() == date(2026, 3, 8)
    assert audited == 1


def field(page: Page, testid: str) -> Locator:
    """The whole input around a select (an empty select's own element has no size)."""
    return page.locator(".q-field", has=page.get_by_test_id(testid))


def test_a_lease_takes_co_tenants_found_by_name(page: Page, console: Console) -> None:
    unit = vacant_unit(console)
    with console.sessions() as session:
        primary, co = session.scalars(
            select(Tenant).where(Tenant.property_id == unit.property_id).order_by(Tenant.id)
        ).all()[:2]
        session.expunge_all()
    sign_in(page, console, "demo-manager")
    expect(page).to_have_url(re.compile(r"/board$"))
    page.goto(f"{console.url}/leases")
    page.get_by_test_id("new-lease").click()
    page.get_by_test_id("lease-property").click()
    page.get_by_role("option", name=unit_property(console, unit)).click()
    page.get_by_test_id("lease-unit").fill(unit.code)
    page.get_by_test_id("lease-tenant-find").fill(primary.name)
    page.get_by_test_id("lease-tenant-search").click()
    field(page, "lease-tenant").click()
    page.get_by_role("option", name=re.compile(f"^{re.escape(primary.name)} · ")).first.click()
    page.get_by_test_id("lease-co-tenants-find").fill(co.name)
    page.get_by_test_id("lease-co-tenants-search").click()
    field(page, "lease-co-tenants").click()
    page.get_by_role("option", name=re.compile(f"^{re.escape(co.name)} · ")).first.click()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("lease-co-tenants")).to_contain_text(co.name)
    page.get_by_test_id("lease-rent").fill("1800")
    page.get_by_test_id("lease-deposit").fill("1800")
    page.get_by_test_id("lease-save").click()
    expect(page.get_by_test_id("fact-共同租客").last).to_have_text(co.name)
    with console.sessions() as session:
        lease = session.scalars(select(Lease).where(Lease.unit_id == unit.id)).one()
        parties = session.scalars(
            select(LeaseTenant.tenant_id).where(LeaseTenant.lease_id == lease.id)
        ).all()
    assert lease.primary_tenant_id == primary.id
    assert co.id in parties


def test_the_front_desk_sees_the_deposit_but_does_not_take_it(page: Page, console: Console) -> None:
    lease = active_lease(console)
    sign_in(page, console, "demo-front_desk")
    expect(page).to_have_url(re.compile(r"/board$"))
    page.goto(f"{console.url}/leases?lease={lease.id}")
    expect(page.get_by_test_id("fact-已收押金")).to_be_visible()
    expect(page.get_by_test_id("deposit-receive")).to_have_count(0)
