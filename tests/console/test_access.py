"""Who gets into the console and what each role sees there (real chromium, real server)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select

from cloud.api.deps import SESSION_COOKIE
from cloud.models import AuditEvent, AuthToken
from tests.console.conftest import Console, sign_in


def test_root_is_the_sign_in_page_in_chinese(page: Page, console: Console) -> None:
    page.goto(f"{console.url}/")
    expect(page.locator("button[type=submit]")).to_have_text("登录")
    page.goto(f"{console.url}/board")
    expect(page).to_have_url(f"{console.url}/")


def test_manager_signs_in_to_the_board(page: Page, console: Console) -> None:
    sign_in(page, console, "demo-manager")
    expect(page).to_have_url(re.compile(r"/board$"))
    expect(page.locator(".nicegui-content").get_by_text("房态图").first).to_be_visible()
    expect(page.get_by_text("A-801")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    page.get_by_text("A-801").click()
    expect(page.locator(".q-dialog").get_by_text("表计").first).to_be_visible()
    expect(page.locator(".q-dialog").get_by_text(re.compile(r"^m-\d{4}$")).first).to_be_visible()


def test_wrong_password_is_refused(page: Page, console: Console) -> None:
    sign_in(page, console, "demo-manager", "not the password")
    expect(page.locator("#login-error")).to_have_text("用户名或密码错误。")
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]


def test_tenant_login_cannot_open_the_console(page: Page, console: Console) -> None:
    sign_in(page, console, "demo-tenant")
    expect(page.locator("#login-error")).to_contain_text("租客")
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    with console.sessions() as session:
        outcomes = session.scalars(
            select(AuditEvent.outcome).where(
                AuditEvent.username == "demo-tenant", AuditEvent.action == "console.login"
            )
        ).all()
    assert outcomes == ["refused"]


def test_front_desk_sees_no_finance_page(page: Page, console: Console) -> None:
    sign_in(page, console, "demo-front_desk")
    expect(page).to_have_url(re.compile(r"/board$"))
    expect(page.locator(".q-header").get_by_text("租客与合同")).to_be_visible()
    expect(page.locator(".q-header").get_by_text("账单")).to_have_count(0)
    expect(page.locator(".q-header").get_by_text("审计日志")).to_have_count(0)
    page.goto(f"{console.url}/audit")
    expect(page.get_by_text("您的角色无权打开此页面。")).to_be_visible()


def test_revoked_session_is_signed_out(page: Page, console: Console) -> None:
    sign_in(page, console, "demo-maintenance")
    expect(page).to_have_url(re.compile(r"/board$"))
    with console.sessions() as session:
        for token in session.scalars(select(AuthToken)):
            token.revoked = True
        session.commit()
    page.goto(f"{console.url}/board")
    expect(page).to_have_url(f"{console.url}/")


def test_switching_to_english_sticks_to_the_user(page: Page, console: Console) -> None:
    sign_in(page, console, "demo-installer")
    expect(page.locator(".q-header").get_by_text("房态图")).to_be_visible()
    page.locator(".q-header .q-select").click()
    page.get_by_role("option", name="English").click()
    expect(page.locator(".q-header").get_by_text("Room board")).to_be_visible()
    page.goto(f"{console.url}/board")
    expect(page.locator(".q-header").get_by_text("Sign out")).to_be_visible()


def test_maintenance_opens_a_meter(page: Page, console: Console) -> None:
    sign_in(page, console, "demo-maintenance")
    expect(page).to_have_url(re.compile(r"/board$"))
    expect(page.locator(".q-header").get_by_text("账单")).to_have_count(0)
    page.locator(".q-header").get_by_text("表计").click()
    page.get_by_test_id("meters").get_by_text("m-0001", exact=True).click()
    expect(page.locator(".q-dialog").get_by_text("暂无读数。")).to_be_visible()
