"""Work orders and spare parts in a real browser: a manager stocks a part, reports an order for
a unit, assigns it, starts it, uses the part on it and marks it done; roles without the
permissions neither see the pages nor get their actions through."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from cloud.api.problems import ProblemError
from cloud.api.routes import parts as part_routes
from cloud.api.routes import work_orders as order_routes
from cloud.models import (
    Category,
    OrderState,
    PartMovement,
    PartStock,
    Property,
    SparePart,
    Unit,
    User,
    UserProperty,
    WorkOrder,
)
from tests.console.conftest import Console, sign_in
from tests.console.test_lease_forms import field
from tests.console.test_page_limits import viewer_for


def first_property(console: Console) -> tuple[int, str, str]:
    """The first property (the console's default choice), its name and one of its units."""
    with console.sessions() as session:
        prop = session.scalars(select(Property).order_by(Property.id)).first()
        assert prop is not None
        unit = session.scalars(
            select(Unit).where(Unit.property_id == prop.id).order_by(Unit.id)
        ).first()
        assert unit is not None
        return prop.id, prop.name, unit.code


def test_an_order_is_assigned_worked_with_a_part_and_done(page: Page, console: Console) -> None:
    property_id, _name, unit_code = first_property(console)
    sign_in(page, console, "demo-manager")
    expect(page).to_have_url(re.compile(r"/board$"))
    page.locator(".q-header").get_by_text("备件").click()
    page.get_by_test_id("new-part").click()
    page.get_by_test_id("part-code").fill("TAP-01")
    page.get_by_test_id("part-name").fill("水龙头")
    page.get_by_test_id("part-price").fill("35.50")
    page.get_by_test_id("part-received").fill("5")
    page.get_by_test_id("part-save").click()
    expect(page.get_by_test_id("stock").get_by_text("TAP-01")).to_be_visible()

    page.locator(".q-header").get_by_text("工单").click()
    page.get_by_test_id("new-order").click()
    page.get_by_test_id("order-unit").fill(unit_code)
    page.get_by_test_id("order-text").fill("厨房水龙头漏水")
    page.get_by_test_id("order-save").click()
    expect(page.get_by_test_id("order-状态").last).to_have_text("新建")
    field(page, "order-worker").click()
    page.get_by_role("option", name="demo-maintenance").click()
    page.get_by_test_id("order-assign").click()
    expect(page.get_by_test_id("order-状态").last).to_have_text("已派单")
    page.get_by_test_id("order-step-in_progress").last.click()
    expect(page.get_by_test_id("order-状态").last).to_have_text("维修中")
    page.get_by_test_id("use-part").last.click()
    field(page, "use-part-which").last.click()
    page.get_by_role("option", name=re.compile("^TAP-01")).click()
    page.get_by_test_id("use-part-save").last.click()
    expect(page.get_by_test_id("order-parts").last.get_by_text("TAP-01")).to_be_visible()
    page.get_by_test_id("order-step-done").last.click()
    expect(page.get_by_test_id("order-状态").last).to_have_text("已完成")

    with console.sessions() as session:
        order = session.scalars(select(WorkOrder).order_by(WorkOrder.id.desc())).first()
        assert order is not None
        worker = session.get_one(User, order.assignee_id)
        part = session.scalars(select(SparePart).where(SparePart.code == "TAP-01")).one()
        left = session.get_one(PartStock, (part.id, property_id)).quantity
        used = session.scalars(
            select(PartMovement.quantity).where(PartMovement.order_id == order.id)
        ).all()
        assert session.get(UserProperty, (worker.id, property_id)) is not None
    assert (order.state, order.description, worker.username) == (
        OrderState.DONE, "厨房水龙头漏水", "demo-maintenance",
    )  # fmt: skip
    assert (part.price_fen, left, list(used)) == (3550, 4, [-1])


def test_finance_reaches_neither_orders_nor_stores(page: Page, console: Console) -> None:
    sign_in(page, console, "demo-finance")
    expect(page).to_have_url(re.compile(r"/board$"))
    expect(page.locator(".q-header").get_by_text("工单")).to_have_count(0)
    for path in ("/work-orders", "/parts"):
        page.goto(f"{console.url}{path}")
        expect(page.get_by_test_id("refused")).to_be_visible()


def test_the_front_desk_dispatches_but_keeps_no_stores(page: Page, console: Console) -> None:
    sign_in(page, console, "demo-front_desk")
    expect(page).to_have_url(re.compile(r"/board$"))
    expect(page.locator(".q-header").get_by_text("工单")).to_be_visible()
    expect(page.locator(".q-header").get_by_text("备件")).to_have_count(0)
    page.goto(f"{console.url}/parts")
    expect(page.get_by_test_id("refused")).to_be_visible()
    # A receipt sent anyway (a forged page event) is the route's to refuse.
    desk = viewer_for(console, "demo-front_desk")
    with pytest.raises(ProblemError) as refused:
        desk.send(part_routes.receive, part_id=1,
                  body=part_routes.ReceiptIn(property_id=1, quantity=1))  # fmt: skip
    assert refused.value.status == 403


def test_a_forged_page_action_with_text_the_api_refuses_is_refused_before_the_route(
    console: Console,
) -> None:
    """The API refuses NUL and lone surrogates on the wire; a page's values never cross it, so
    `Viewer.call` refuses them itself (pydantic's own check stops a lone surrogate in a model,
    not a NUL), and nothing reaches the database."""
    property_id, _name, _unit = first_property(console)
    manager = viewer_for(console, "demo-manager")
    with console.sessions() as session:
        before = session.scalars(select(WorkOrder.id)).all()
    body = order_routes.OrderIn(property_id=property_id, area="大堂", category=Category.OTHER,
                                description="漏水\x00")  # fmt: skip
    with pytest.raises(ProblemError) as refused:
        manager.send(order_routes.open_order, body=body)
    assert refused.value.status == 422
    with pytest.raises(ProblemError) as refused:
        manager.send(order_routes.list_orders, property_id=None, state=None, assignee_id=None,
                     overdue=None, after="MTIz\ud800", limit=5)  # fmt: skip
    assert refused.value.status == 422
    with console.sessions() as session:
        assert session.scalars(select(WorkOrder.id)).all() == before


def test_a_unit_code_no_unit_can_have_is_no_such_unit(page: Page, console: Console) -> None:
    _property_id, _name, unit_code = first_property(console)
    sign_in(page, console, "demo-manager")
    expect(page).to_have_url(re.compile(r"/board$"))
    with console.sessions() as session:
        before = session.scalars(select(WorkOrder.id)).all()
    page.goto(f"{console.url}/work-orders")
    page.get_by_test_id("new-order").click()
    page.get_by_test_id("order-unit").fill(unit_code + "\x00")
    page.get_by_test_id("order-text").fill("厨房水龙头漏水")
    page.get_by_test_id("order-save").click()
    expect(page.get_by_text("该项目中没有此房间")).to_be_visible()
    with console.sessions() as session:
        assert session.scalars(select(WorkOrder.id)).all() == before
