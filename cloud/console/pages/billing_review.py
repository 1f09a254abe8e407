"""What finance reviews: the billing runs and what each left out, the usage holds a run left
(approve the measured usage, or reject it by billing a corrected quantity, through the API's
release route) and the rent roll (the API's report, a page at a time)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from cloud.api.routes import billing as billing_routes
from cloud.api.routes import billing_rules as rule_routes
from cloud.console.i18n import N_
from cloud.console.layout import act, choice, columns, enter, frame, my_properties
from cloud.console.viewer import Viewer
from cloud.models import HoldKind
from cloud.security.authz import Permission

P = Permission
PAGE_SIZE = 50
HOLD_LABELS = {
    HoldKind.USAGE: N_("Usage spike"),
    HoldKind.BACK_RENT: N_("Back rent"),
    "error": N_("Could not bill"),
}


def runs_section(viewer: Viewer, property_id: int, after: int) -> None:
    """The property's billing runs (the API's list), each with what it billed and skipped."""
    _ = viewer._
    t = viewer.texts
    with viewer.db() as session:
        page = viewer.call(
            billing_routes.list_runs,
            me=viewer.me,
            session=session,
            property_id=property_id,
            after=max(after, 0) or None,
            limit=PAGE_SIZE,
        )
    if not page.items:
        return
    ui.label(_("Billing runs")).classes("text-h6")
    ui.table(
        columns=columns(
            ("period", _("Month")),
            ("started", _("Started")),
            ("finished", _("Finished")),
            ("invoices", _("Invoices")),
            ("lines", _("Lines")),
            ("skipped", _("Skipped")),
        ),
        rows=[
            {
                "id": r.id,
                "period": r.period,
                "started": t.moment(r.started_at),
                "finished": t.moment(r.finished_at),
                "invoices": t.number(r.invoices_created),
                "lines": t.number(r.lines_created),
                "skipped": "; ".join(f"{s.item}: {s.reason}" for s in r.skipped[:5])
                + (" …" if len(r.skipped) > 5 else ""),
            }
            for r in page.items
        ],
        row_key="id",
    ).props("dense flat").classes("w-full").props("data-testid=runs")
    if page.next_after is not None:
        ui.link(_("Next page"), f"/billing?property={property_id}&runs_after={page.next_after}")


def holds_section(viewer: Viewer, property_id: int, after: int) -> None:
    """The holds still waiting, oldest first, a page at a time."""
    _ = viewer._
    t = viewer.texts
    with viewer.db() as session:
        page = viewer.call(
            rule_routes.list_holds,
            me=viewer.me,
            session=session,
            property_id=property_id,
            released=False,
            after=max(after, 0) or None,
            limit=PAGE_SIZE,
        )
    ui.label(_("Usage holds to review")).classes("text-h6")
    if not page.items:
        ui.label(_("Nothing is held.")).props("data-testid=no-holds")
        return
    by_id = {h.id: h for h in page.items}
    table = (
        ui.table(
            columns=columns(
                ("id", "#"),
                ("lease", _("Lease")),
                ("meter", _("Meter")),
                ("kind", _("Kind")),
                ("period", _("Period")),
                ("quantity", _("Measured")),
                ("reason", _("Reason")),
            ),
            rows=[
                {
                    "id": h.id,
                    "lease": h.lease_id,
                    "meter": h.meter_id,
                    "kind": _(HOLD_LABELS.get(h.kind, h.kind)),
                    "period": f"{t.day(h.period_start)} ~ {t.day(h.period_end)}",
                    "quantity": "" if h.quantity is None else t.number(h.quantity),
                    "reason": h.reason,
                }
                for h in page.items
            ],
            row_key="id",
        )
        .props("dense flat")
        .classes("w-full cursor-pointer")
        .props("data-testid=holds")
    )
    table.on(
        "rowClick", lambda e: act(viewer, lambda: _hold_dialog(viewer, by_id[int(e.args[1]["id"])]))
    )
    if page.next_after is not None:
        ui.link(_("Next page"), f"/billing?property={property_id}&holds_after={page.next_after}")


def _hold_dialog(viewer: Viewer, hold: rule_routes.HoldOut) -> None:
    _ = viewer._
    with ui.dialog(value=True) as dialog, ui.card().classes("w-[28rem]"):
        ui.label(_("Hold #{id}").format(id=hold.id)).classes("text-h6")
        ui.label(hold.reason)
        note = ui.input(_("Note (why)")).props("maxlength=500 data-testid=hold-note")
        corrected = None
        if hold.kind == HoldKind.USAGE:
            corrected = ui.input(_("Quantity to bill instead"), value="0").props(
                "data-testid=hold-quantity"
            )

        def release(quantity: str | None) -> None:
            try:
                amount = None if quantity is None else Decimal(quantity)
            except InvalidOperation:
                ui.notify(_("Enter a quantity such as 12.5"), type="negative")
                return
            body = rule_routes.ReleaseIn(quantity=amount, note=note.value or "")
            viewer.send(rule_routes.release_hold, hold_id=hold.id, body=body)
            dialog.close()
            ui.notify(_("Released: the next run of that month bills it"), type="positive")
            ui.navigate.reload()

        with ui.row():
            ui.button(_("Approve"), on_click=lambda: act(viewer, lambda: release(None))).props(
                "unelevated color=teal data-testid=hold-approve"
            )
            if corrected is not None:
                box = corrected
                ui.button(
                    _("Reject: bill the quantity above"),
                    on_click=lambda: act(viewer, lambda: release(box.value or "")),
                ).props("unelevated color=negative data-testid=hold-reject")
            ui.button(_("Close"), on_click=dialog.close).props("flat")


@ui.page("/billing/rent-roll")
def rent_roll_page(request: Request, property: int = 0, after: str = "") -> RedirectResponse | None:
    """The leases in force today by unit, a page at a time from the API's rent-roll route
    (paged in the database), with the whole roll's totals; the CSV is the API's report."""
    viewer = enter(request, P.REPORTS_READ)
    if not isinstance(viewer, Viewer):
        return viewer
    _ = viewer._
    t = viewer.texts
    properties = my_properties(viewer)
    chosen = property if property in properties else next(iter(properties), 0)
    with frame(viewer, _("Rent roll")):
        with ui.row().classes("items-center q-gutter-md"):
            choice(
                properties,
                chosen or None,
                _("Property"),
                lambda v: f"/billing/rent-roll?property={v}",
                "property",
            ).classes("w-72")
            ui.link(_("Billing"), f"/billing?property={chosen}")
            if chosen:
                ui.link(
                    _("Download CSV"),
                    f"/api/v1/reports/rent-roll?property_id={chosen}&format=csv",
                )
        if not chosen:
            return None
        page = viewer.send(
            billing_routes.rent_roll,
            property_id=chosen,
            as_of=None,
            after=after[:512] or None,
            limit=PAGE_SIZE,
        )
        totals = page.totals
        ui.label(
            _("{n} leases in force, monthly rent {rent}, owed {owed}").format(
                n=t.number(totals.leases),
                rent=t.money(totals.monthly_rent_fen),
                owed=t.money(totals.balance_fen),
            )
        ).props("data-testid=rent-roll-total")
        ui.table(
            columns=columns(
                ("unit", _("Unit")),
                ("lease", _("Lease")),
                ("tenant", _("Tenant")),
                ("period", _("Period")),
                ("rent", _("Rent")),
                ("deposit", _("Deposit")),
                ("cycle", _("Payment cycle")),
                ("balance", _("Balance owed")),
            ),
            rows=[
                {
                    "unit": r.unit,
                    "lease": r.lease_id,
                    "tenant": r.tenant,
                    "period": f"{t.day(r.start)} ~ {t.day(r.end)}",
                    "rent": t.money(r.monthly_rent_fen),
                    "deposit": t.money(r.deposit_fen),
                    "cycle": _("every {n} months").format(n=r.cycle_months),
                    "balance": t.money(r.balance_fen),
                }
                for r in page.items
            ],
            row_key="lease",
        ).props("dense flat").classes("w-full").props("data-testid=rent-roll")
        with ui.row():
            if after:
                ui.link(_("First page"), f"/billing/rent-roll?property={chosen}")
            if page.next_after is not None:
                ui.link(
                    _("Next page"),
                    f"/billing/rent-roll?property={chosen}&after={quote(page.next_after)}",
                )
    return None
