"""Gateway commands from the console: an installer may ping but not open doors; a manager's
unlock asks first, then goes through the API's signed-command route (queued, audited)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from cloud.models import AuditEvent, Gateway, GatewayCommand, Property
from tests.console.conftest import Console, sign_in

GATEWAY = "gw-console-test"


@pytest.fixture(scope="module")
def gateway(console: Console) -> str:
    with console.sessions() as session:
        prop = session.scalars(select(Property).order_by(Property.id)).first()
        assert prop is not None
        session.add(Gateway(id=GATEWAY, name="A栋网关", property_id=prop.id, building="A栋"))
        session.commit()
    return GATEWAY


def open_gateway(page: Page, console: Console, username: str) -> None:
    sign_in(page, console, username)
    expect(page).to_have_url(re.compile(r"/board$"))
    page.goto(f"{console.url}/gateways")
    page.get_by_test_id("gateways").get_by_text(GATEWAY).click()


def test_installer_pings_but_cannot_unlock(page: Page, console: Console, gateway: str) -> None:
    open_gateway(page, console, "demo-installer")
    expect(page.get_by_test_id("unlock")).to_have_count(0)
    page.get_by_test_id("ping").click()
    expect(page.get_by_test_id("command-answer")).to_contain_text("queued")
    with console.sessions() as session:
        names = session.scalars(
            select(GatewayCommand.name).where(GatewayCommand.gateway_id == gateway)
        ).all()
    assert "ping" in names


def test_manager_unlock_asks_first(page: Page, console: Console, gateway: str) -> None:
    open_gateway(page, console, "demo-manager")
    page.get_by_test_id("door").fill("front")
    page.get_by_test_id("unlock").click()
    expect(page.get_by_test_id("confirm")).to_be_visible()
    with console.sessions() as session:
        assert not session.scalars(
            select(GatewayCommand).where(GatewayCommand.name == "door.unlock")
        ).all()
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("command-answer")).to_contain_text("queued")
    with console.sessions() as session:
        command = session.scalars(
            select(GatewayCommand).where(GatewayCommand.name == "door.unlock")
        ).one()
        assert command.args == {"door": "front"}
        assert command.issued_by == "demo-manager"
        audited = session.scalars(
            select(AuditEvent.username).where(AuditEvent.action == "gateway.command")
        ).all()
    assert "demo-manager" in audited
