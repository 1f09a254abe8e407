"""Spare parts: each store's stock in the viewer's properties (the API's stock list, filtered
by property on the server, low stock first), a new part in the catalogue and a receipt into a
store for roles that keep the stores. Parts are used on a work order's page."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from cloud.api.routes import parts as part_routes
from cloud.console.layout import act, choice, columns, enter, frame, my_properties, yuan
from cloud.console.pages.lease_forms import buttons
from cloud.console.viewer import Viewer
from cloud.security.authz import Permission

P = Permission
PAGE_SIZE = 50


@ui.page("/parts")
def parts_page(
    request: Request, property: int = 0, low: str = "", after: str = ""
) -> RedirectResponse | None:
    viewer = enter(request, P.PARTS_READ)
    if not isinstance(viewer, Viewer):
        return viewer
    _ = viewer._
    t = viewer.texts
    properties = my_properties(viewer)
    chosen = property if property in properties else next(iter(properties), 0)
    only_low = low == "1"
    stock = viewer.send(
        part_routes.list_stock,
        property_id=chosen or None,
        low=True if only_low else None,
        after=after[:60] or None,
        limit=PAGE_SIZE,
    )
    with frame(viewer, _("Spare parts")):
        with ui.row().classes("items-center q-gutter-md"):
            choice(properties, chosen, _("Property"), "/parts?property={}".format,
                   "parts-property").classes("w-64")  # fmt: skip
            choice(
                {"": _("All"), "1": _("Below the reorder level")},
                "1" if only_low else "",
                _("Stock"),
                lambda v: f"/parts?property={chosen}&low={v}",
                "parts-low",
            ).classes("w-48")
            if viewer.can(P.PARTS_WRITE):
                ui.button(
                    _("New part"), on_click=lambda: act(viewer, lambda: new_part(viewer, chosen))
                ).props("outline color=teal data-testid=new-part")
        ui.table(
            columns=columns(
                ("code", _("Code")),
                ("name", _("Name")),
                ("quantity", _("In stock")),
                ("price", _("Price")),
                ("low", _("Low")),
            ),
            rows=[
                {
                    "id": s.part_id,
                    "code": s.code,
                    "name": s.name,
                    "quantity": f"{t.number(s.quantity)} {s.unit}",
                    "price": t.money(s.price_fen),
                    "low": "⚠" if s.low else "",
                }
                for s in stock.items
            ],
            row_key="id",
        ).props("dense flat data-testid=stock").classes("w-full")
        if stock.next_after is not None:
            nxt = quote(stock.next_after)
            ui.link(_("Next page"), f"/parts?property={chosen}&low={low}&after={nxt}")
        if viewer.can(P.PARTS_WRITE) and stock.items:
            _receipt(viewer, chosen, {s.part_id: f"{s.code} {s.name}" for s in stock.items})
    return None


def new_part(viewer: Viewer, property_id: int) -> None:
    """A part in the organisation's catalogue, and its first receipt into this store."""
    _ = viewer._
    with ui.dialog(value=True) as dialog, ui.card().classes("w-[28rem]"):
        ui.label(_("New part")).classes("text-h6")
        code = ui.input(_("Code")).props("maxlength=40 data-testid=part-code")
        name = ui.input(_("Name")).props("maxlength=200 data-testid=part-name")
        unit = ui.input(_("Unit of issue"), value="pcs").props("maxlength=16")
        price = ui.input(_("Price (¥)")).props("data-testid=part-price")
        reorder = ui.number(_("Reorder level"), value=0, min=0, precision=0)
        first = ui.number(_("Received now"), value=0, min=0, precision=0).props(
            "data-testid=part-received"
        )

        def save() -> None:
            fen = yuan(viewer, price.value)
            if fen is None:
                return
            body = part_routes.PartIn(
                code=code.value or "", name=name.value or "", unit=unit.value or "pcs",
                price_fen=fen, reorder_level=int(reorder.value or 0),
            )  # fmt: skip
            made = viewer.send(part_routes.create_part, body=body)
            if first.value:
                receipt = part_routes.ReceiptIn(property_id=property_id, quantity=int(first.value))
                viewer.send(part_routes.receive, part_id=made.id, body=receipt)
            dialog.close()
            ui.navigate.reload()

        buttons(viewer, dialog, _("Save"), save, "part-save")


def _receipt(viewer: Viewer, property_id: int, parts: dict[int, str]) -> None:
    _ = viewer._
    with ui.card().classes("w-96"):
        ui.label(_("Receive into this store")).classes("text-subtitle1")
        part = ui.select(parts, label=_("Part")).classes("w-80").props("data-testid=receipt-part")
        quantity = ui.number(_("Quantity"), value=1, min=1, precision=0).props(
            "data-testid=receipt-quantity"
        )

        def save() -> None:
            body = part_routes.ReceiptIn(property_id=property_id, quantity=int(quantity.value or 0))
            viewer.send(part_routes.receive, part_id=int(part.value or 0), body=body)
            ui.navigate.reload()

        ui.button(_("Receive"), on_click=lambda: act(viewer, save)).props(
            "unelevated color=teal data-testid=receipt-save"
        )
