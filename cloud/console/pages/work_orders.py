"""Work orders: the API's list (newest first, paged and filtered by state on the server), a new
order for a unit or a common area, and an order's page: its facts, the steps its state allows
(the service's own transition table) for the roles that take them, and the parts used on it."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui
from sqlalchemy import select

from cloud.api.routes import parts as part_routes
from cloud.api.routes import work_orders as order_routes
from cloud.console.i18n import N_
from cloud.console.layout import act, choice, columns, enter, frame, my_properties, unit_in
from cloud.console.pages.lease_forms import buttons
from cloud.console.viewer import Viewer
from cloud.maintenance.orders import TRANSITIONS
from cloud.models import Category, OrderState, Priority, Unit, User
from cloud.security.authz import Permission

P = Permission
S = OrderState
PAGE_SIZE = 50
LABELS = (
    N_("new"), N_("assigned"), N_("in_progress"), N_("waiting_parts"), N_("done"),
    N_("confirmed"), N_("reopened"), N_("cancelled"), N_("urgent"), N_("high"), N_("normal"),
    N_("low"), N_("plumbing"), N_("electrical"), N_("appliance"), N_("door"), N_("meter"),
    N_("network"), N_("structure"), N_("cleaning"), N_("other"),
)  # fmt: skip
# The steps a page offers, by who takes them (the routes check the same and the assignee).
WORK_STEPS = {S.IN_PROGRESS: N_("Start work"), S.WAITING_PARTS: N_("Waiting for parts"),
              S.DONE: N_("Done")}  # fmt: skip
CONFIRM_STEPS = {S.CONFIRMED: N_("Confirm the repair"), S.REOPENED: N_("Reopen")}


@ui.page("/work-orders")
def orders_page(
    request: Request, state: str = "", after: str = "", order: int = 0
) -> RedirectResponse | None:
    viewer = enter(request, P.WORK_ORDERS_READ)
    if not isinstance(viewer, Viewer):
        return viewer
    _ = viewer._
    t = viewer.texts
    wanted = S(state) if state in S.__members__.values() else None
    page = viewer.send(
        order_routes.list_orders,
        property_id=None,
        state=wanted,
        assignee_id=None,
        overdue=None,
        after=after[:200] or None,
        limit=PAGE_SIZE,
    )
    with viewer.db() as session:
        units = dict(
            session.execute(
                select(Unit.id, Unit.code).where(Unit.id.in_({o.unit_id for o in page.items}))
            ).all()
        )
        workers = dict(
            session.execute(
                select(User.id, User.username).where(
                    User.id.in_({o.assignee_id for o in page.items})
                )
            ).all()
        )
    with frame(viewer, _("Work orders")):
        with ui.row().classes("items-center q-gutter-md"):
            states = {"": _("All")} | {s.value: _(s.value) for s in S}
            choice(
                states,
                wanted.value if wanted else "",
                _("State"),
                "/work-orders?state={}".format,
                "order-state",
            ).classes("w-48")
            if viewer.can(P.WORK_ORDERS_CREATE):
                ui.button(
                    _("New work order"), on_click=lambda: act(viewer, lambda: new_order(viewer))
                ).props("outline color=teal data-testid=new-order")
        table = (
            ui.table(
                columns=columns(
                    ("id", "#"),
                    ("where", _("Unit or area")),
                    ("category", _("Category")),
                    ("priority", _("Priority")),
                    ("state", _("State")),
                    ("assignee", _("Assigned to")),
                    ("created", _("Reported")),
                    ("due", _("Resolve by")),
                ),
                rows=[
                    {
                        "id": o.id,
                        "where": units.get(o.unit_id or 0, o.area),
                        "category": _(o.category.value),
                        "priority": _(o.priority.value),
                        "state": _(o.state.value) + (" ⚠" if o.overdue else ""),
                        "assignee": workers.get(o.assignee_id or 0, ""),
                        "created": t.moment(o.created_at),
                        "due": t.moment(o.resolution_due),
                    }
                    for o in page.items
                ],
                row_key="id",
            )
            .props("dense flat data-testid=orders")
            .classes("w-full cursor-pointer")
        )
        table.on("rowClick", lambda e: act(viewer, lambda: order_dialog(viewer, e.args[1]["id"])))
        if page.next_after is not None:
            ui.link(_("Next page"), f"/work-orders?state={state}&after={page.next_after}")
    if order:
        act(viewer, lambda: order_dialog(viewer, order))
    return None


def new_order(viewer: Viewer) -> None:
    """A unit's order (by its code), or a common area's (no unit code, an area named)."""
    _ = viewer._
    properties = my_properties(viewer)
    with ui.dialog(value=True) as dialog, ui.card().classes("w-[30rem]"):
        ui.label(_("New work order")).classes("text-h6")
        prop = ui.select(properties, value=next(iter(properties), None), label=_("Property"))
        prop.props("data-testid=order-property")
        unit_code = ui.input(_("Unit code")).props("maxlength=32 data-testid=order-unit")
        area = ui.input(_("Or a common area")).props("maxlength=100 data-testid=order-area")
        category = ui.select(
            {c.value: _(c.value) for c in Category}, value=Category.OTHER.value, label=_("Category")
        ).props("data-testid=order-category")
        priority = ui.select(
            {p.value: _(p.value) for p in Priority}, value=Priority.NORMAL.value,
            label=_("Priority"),
        )  # fmt: skip
        text = ui.textarea(_("What is wrong")).props("maxlength=2000 data-testid=order-text")

        def save() -> None:
            unit_id = None
            if (unit_code.value or "").strip():
                unit_id = unit_in(viewer, prop.value, unit_code.value)
                if unit_id is None:
                    return
            body = order_routes.OrderIn(
                unit_id=unit_id,
                property_id=None if unit_id else prop.value,
                area="" if unit_id else area.value or "",
                category=Category(category.value),
                priority=Priority(priority.value),
                description=text.value or "",
            )
            made = viewer.send(order_routes.open_order, body=body)
            dialog.close()
            order_dialog(viewer, made.id)

        buttons(viewer, dialog, _("Report"), save, "order-save")


def order_dialog(viewer: Viewer, order_id: int) -> None:
    _ = viewer._
    t = viewer.texts
    order = viewer.send(order_routes.get_order, order_id=order_id)
    charge = viewer.send(part_routes.get_charge, order_id=order_id)
    with viewer.db() as session:
        unit = session.get(Unit, order.unit_id) if order.unit_id else None
        assignee = session.get(User, order.assignee_id) if order.assignee_id else None
        workers = (
            order_routes.workers_of(session, viewer.me.org_id, order.property_id)
            if viewer.can(P.WORK_ORDERS_ASSIGN)
            else {}
        )
    nexts = TRANSITIONS[order.state]
    with ui.dialog(value=True) as dialog, ui.card().classes("w-[40rem] max-w-none"):
        ui.label(_("Work order #{id}").format(id=order.id)).classes("text-h6")
        facts = [
            (_("Unit or area"), unit.code if unit else order.area),
            (_("Category"), _(order.category.value)),
            (_("Priority"), _(order.priority.value)),
            (_("State"), _(order.state.value)),
            (_("Assigned to"), assignee.username if assignee else ""),
            (_("Reported"), t.moment(order.created_at)),
            (_("Resolve by"), t.moment(order.resolution_due)),
            (_("Past the deadline"), _("yes") if order.overdue else _("no")),
        ]
        for name, value in facts:
            with ui.row().classes("w-full justify-between"):
                ui.label(name).classes("text-grey-8")
                ui.label(value).props(f"data-testid=order-{name}")
        ui.label(order.description).classes("q-my-sm")
        _parts_used(viewer, charge)

        def go(to: OrderState) -> None:
            if to in CONFIRM_STEPS:
                action = "confirm" if to is S.CONFIRMED else "reopen"
                viewer.send(order_routes.confirm, order_id=order_id,
                            body=order_routes.ConfirmIn(action=action))  # fmt: skip
            else:
                body = order_routes.ProgressIn.model_validate({"state": to})
                viewer.send(order_routes.progress, order_id=order_id, body=body)
            dialog.close()
            order_dialog(viewer, order_id)

        with ui.row():
            if S.ASSIGNED in nexts and workers:
                who = (
                    ui.select(workers, label=_("Worker"))
                    .classes("w-48")
                    .props("data-testid=order-worker")
                )

                def assign() -> None:
                    body = order_routes.AssignIn(assignee_id=int(who.value or 0))
                    viewer.send(order_routes.assign, order_id=order_id, body=body)
                    dialog.close()
                    order_dialog(viewer, order_id)

                ui.button(_("Assign"), on_click=lambda: act(viewer, assign)).props(
                    "unelevated color=teal data-testid=order-assign"
                )
            steps = (WORK_STEPS if viewer.can(P.WORK_ORDERS_WORK) else {}) | (
                CONFIRM_STEPS if viewer.can(P.WORK_ORDERS_CONFIRM) else {}
            )
            for to, label in steps.items():
                if to in nexts:
                    ui.button(_(label), on_click=lambda s=to: act(viewer, lambda: go(s))).props(
                        f"unelevated color=teal data-testid=order-step-{to.value}"
                    )
        if viewer.can(P.WORK_ORDERS_WORK) and order.state not in (S.CONFIRMED, S.CANCELLED):
            _use_part(viewer, dialog, order_id, order.property_id)
        ui.button(_("Close"), on_click=dialog.close).props("flat")


def _parts_used(viewer: Viewer, charge: part_routes.ChargeOut) -> None:
    _ = viewer._
    t = viewer.texts
    if not charge.movements:
        return
    ui.table(
        columns=columns(("code", _("Part")), ("quantity", _("Quantity")), ("at", _("Time"))),
        rows=[
            {"id": m.id, "code": m.code, "quantity": -m.quantity, "at": t.moment(m.at)}
            for m in charge.movements
        ],
        row_key="id",
    ).props("dense flat data-testid=order-parts").classes("w-full")
    ui.label(_("Parts: {fen}").format(fen=t.money(charge.parts_fen)))


def _use_part(viewer: Viewer, dialog: ui.dialog, order_id: int, property_id: int) -> None:
    """Issue a part from the property's store to the order (or return an unused one)."""
    _ = viewer._
    stock = viewer.send(part_routes.list_stock, property_id=property_id) if viewer.can(
        P.PARTS_READ
    ) else part_routes.StockList(items=[])  # fmt: skip
    if not stock.items:
        return
    with ui.expansion(_("Use a spare part")).classes("w-full").props("data-testid=use-part"):
        part = (
            ui.select(
                {s.part_id: f"{s.code} {s.name} ({s.quantity} {s.unit})" for s in stock.items},
                label=_("Part"),
            )
            .classes("w-80")
            .props("data-testid=use-part-which")
        )
        quantity = ui.number(_("Quantity"), value=1, min=1, precision=0).props(
            "data-testid=use-part-quantity"
        )
        back = ui.checkbox(_("Return unused"))

        def use() -> None:
            body = part_routes.OrderPartIn(
                part_id=int(part.value or 0),
                quantity=int(quantity.value or 0),
                action="return" if back.value else "issue",
            )
            viewer.send(part_routes.order_parts, order_id=order_id, body=body)
            dialog.close()
            order_dialog(viewer, order_id)

        ui.button(_("Record"), on_click=lambda: act(viewer, use)).props(
            "unelevated color=teal data-testid=use-part-save"
        )
