"""The operations pages in chromium: meter health, daily usage and a swap; door events and the
access-list sync; users and roles for admins only (a manager is refused by URL too)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from cloud.models import (
    AuditEvent,
    Door,
    DoorScope,
    Event,
    Gateway,
    GatewayAccess,
    Meter,
    MeterKind,
    MeterSwap,
    Property,
    Reading,
    User,
    Utility,
)
from tests.console.conftest import NOW, Console, sign_in

GATEWAY = "gw-ops-test"
NEW_METER = "m-ops-new"


@pytest.fixture(scope="module")
def placed(console: Console) -> dict[str, str | int]:
    """A gateway serving one electricity submeter (30 days of counter readings, one bad reading
    an hour ago), a spare meter of the same unit, and a gate door with granted and refused
    events; the gateway has applied access list 2 of 3."""
    with console.sessions() as session:
        prop = session.scalars(select(Property).order_by(Property.id)).first()
        assert prop is not None
        session.add(Gateway(id=GATEWAY, name="运维网关", property_id=prop.id, building="A栋",
                            online=True, last_seen=NOW))  # fmt: skip
        session.flush()
        meter = session.scalars(
            select(Meter)
            .where(Meter.property_id == prop.id, Meter.kind == MeterKind.SUBMETER,
                   Meter.utility == Utility.ELECTRICITY)
            .order_by(Meter.code.desc())
        ).first()  # fmt: skip
        assert meter is not None
        meter.gateway_id = GATEWAY
        session.add(
            Meter(org_id=meter.org_id, code=NEW_METER, property_id=prop.id,
                  building_id=meter.building_id, unit_id=meter.unit_id, kind=MeterKind.SUBMETER,
                  utility=Utility.ELECTRICITY, profile=meter.profile)
        )  # fmt: skip
        seq = 0
        for day in range(30, -1, -1):
            seq += 1
            session.add(Reading(gateway_id=GATEWAY, seq=seq, meter_id=meter.code,
                                point="import_energy", value=1000.0 + 5 * (30 - day), unit="kWh",
                                ts=NOW - timedelta(days=day, minutes=10)))  # fmt: skip
        session.add(Reading(gateway_id=GATEWAY, seq=seq + 1, meter_id=meter.code,
                            point="import_energy", value=None, unit="kWh", quality="bad",
                            ts=NOW - timedelta(minutes=30)))  # fmt: skip
        door = Door(org_id=prop.org_id, property_id=prop.id, scope=DoorScope.PROPERTY,
                    gateway_id=GATEWAY, code="gate", name="南门", secret_enc=b"\0" * 32,
                    created_at=NOW)  # fmt: skip
        session.add(door)
        for i, kind in enumerate(["access.granted", "access.refused", "access.granted"]):
            at = NOW - timedelta(hours=8 * i + 1)  # local 09:00 and 01:00 today, 17:00 yesterday
            session.add(Event(gateway_id=GATEWAY, seq=100 + i, type=kind, source="gate", ts=at,
                              data={"reason": f"r{i}"}))  # fmt: skip
        session.add(GatewayAccess(gateway_id=GATEWAY, compiled_version=3, sent_version=3,
                                  applied_version=2, entries=4))  # fmt: skip
        session.commit()
        return {"meter": meter.code, "unit": meter.unit_id or 0, "door": door.id}


def test_meter_health_and_daily_usage(
    page: Page, console: Console, placed: dict[str, str | int]
) -> None:
    sign_in(page, console, "demo-maintenance")
    expect(page).to_have_url(re.compile(r"/board$"))
    page.goto(f"{console.url}/meters?unit={placed['unit']}")
    meters = page.get_by_test_id("meters")
    row = meters.locator("tr", has_text=str(placed["meter"]))
    expect(row).to_contain_text("正常")
    expect(row).to_contain_text("分钟前")
    expect(meters.locator("tr", has_text=NEW_METER)).to_contain_text("未绑定网关")
    row.get_by_text(str(placed["meter"]), exact=True).click()
    chart = page.get_by_test_id("daily-usage")
    expect(chart.locator("canvas")).to_be_visible()
    expect(page.locator(".q-dialog").get_by_text(re.compile("每日用量"))).to_be_visible()
    expect(page.get_by_test_id("swap")).to_have_count(0)  # maintenance may not record a swap


def test_manager_records_a_swap(page: Page, console: Console, placed: dict[str, str | int]) -> None:
    sign_in(page, console, "demo-manager")
    expect(page).to_have_url(re.compile(r"/board$"))
    page.goto(f"{console.url}/meters?unit={placed['unit']}&utility=electricity")
    row = page.get_by_test_id("meters").locator("tr", has_text=str(placed["meter"]))
    row.get_by_text(str(placed["meter"]), exact=True).click()
    page.get_by_test_id("swap").click()
    page.get_by_test_id("swap-new").fill(NEW_METER)
    page.get_by_test_id("swap-at").fill("2026-03-10 09:00")
    page.get_by_test_id("swap-old-final").fill("1150")
    page.get_by_test_id("swap-new-initial").fill("0")
    page.get_by_test_id("swap-record").click()
    expect(page.get_by_test_id("swap-answer")).to_contain_text(NEW_METER)
    with console.sessions() as session:
        swap = session.scalars(select(MeterSwap)).one()
        assert swap.old_final == 1150
        assert session.scalars(
            select(AuditEvent.username).where(AuditEvent.action == "meter.swap")
        ).all() == ["demo-manager"]


def test_door_events_filter_and_sync_state(
    page: Page, console: Console, placed: dict[str, str | int]
) -> None:
    sign_in(page, console, "demo-front_desk")
    expect(page).to_have_url(re.compile(r"/board$"))
    page.locator(".q-header").get_by_text("门禁").click()
    page.goto(f"{console.url}/doors?door={placed['door']}")
    events = page.get_by_test_id("door-events")
    expect(events.locator("tbody tr")).to_have_count(3)
    page.goto(f"{console.url}/doors?door={placed['door']}&result=access.refused")
    events = page.get_by_test_id("door-events")
    expect(events.locator("tbody tr")).to_have_count(1)
    expect(events).to_contain_text("已拒绝")
    expect(events).to_contain_text("reason=r1")
    page.goto(f"{console.url}/doors?door={placed['door']}&since=2026-03-10")
    expect(page.get_by_test_id("door-events").locator("tbody tr")).to_have_count(2)
    expect(page.get_by_test_id("door-events")).not_to_contain_text("r2")
    sync = page.get_by_test_id("access-sync").locator("tr", has_text=GATEWAY)
    expect(sync).to_contain_text("未同步")


def test_admin_creates_and_disables_a_user(page: Page, console: Console) -> None:
    sign_in(page, console, "demo-admin")
    expect(page).to_have_url(re.compile(r"/board$"))
    page.locator(".q-header").get_by_text("用户与角色").click()
    page.get_by_test_id("new-user").click()
    page.get_by_test_id("username").fill("ops-desk")
    page.get_by_test_id("display-name").fill("前台小王")
    page.get_by_test_id("password").fill("Ops console 2026 long pass")
    page.get_by_test_id("create").click()
    row = page.get_by_test_id("users").locator("tr", has_text="ops-desk")
    expect(row).to_contain_text("前台")
    row.get_by_text("ops-desk").click()
    page.get_by_test_id("switch").click()
    expect(page.get_by_test_id("users").locator("tr", has_text="ops-desk")).to_contain_text(
        "已停用"
    )
    with console.sessions() as session:
        user = session.scalars(select(User).where(User.username == "ops-desk")).one()
        assert not user.active
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.target_id == str(user.id))
        ).all()
    assert set(actions) >= {"user.create", "user.deactivate"}


def test_a_manager_cannot_reach_users_by_url(page: Page, console: Console) -> None:
    sign_in(page, console, "demo-manager")
    expect(page).to_have_url(re.compile(r"/board$"))
    expect(page.locator(".q-header").get_by_text("用户与角色")).to_have_count(0)
    page.goto(f"{console.url}/users")
    expect(page.get_by_test_id("refused")).to_be_visible()
    expect(page.get_by_test_id("users")).to_have_count(0)
