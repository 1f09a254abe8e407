"""Billing: run a month (with progress), the invoices (paged, PDFs from the API), payments, and
the AR aging and collection-rate charts, all through the API's billing routes."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui
from sqlalchemy import select

from cloud.api.routes import billing as billing_routes
from cloud.billing.service.reports import AGING_BUCKETS
from cloud.console.i18n import N_
from cloud.console.layout import act, act_slowly, choice, columns, enter, frame
from cloud.console.viewer import Viewer
from cloud.models import InvoiceStatus, Property
from cloud.security.authz import Permission

P = Permission
PAGE_SIZE = 50
BUCKET_LABELS = {
    "current": N_("Not yet due"),
    "d0_30": N_("0-30 days"),
    "d31_60": N_("31-60 days"),
    "d61_90": N_("61-90 days"),
    "d90_plus": N_("Over 90 days"),
}


@ui.page("/billing")
def billing_page(
    request: Request, property: int = 0, status: str = "", after: int = 0
) -> RedirectResponse | None:
    viewer = enter(request, P.REPORTS_READ)
    if not isinstance(viewer, Viewer):
        return viewer
    _ = viewer._
    with viewer.db() as session:
        properties = dict(
            session.execute(
                select(Property.id, Property.name)
                .where(Property.id.in_(viewer.me.property_ids))
                .order_by(Property.id)
            ).all()
        )
    chosen = property if property in properties else next(iter(properties), 0)
    wanted = InvoiceStatus(status) if status in InvoiceStatus.__members__.values() else None
    with frame(viewer, _("Billing")):
        choice(
            properties,
            chosen or None,
            _("Property"),
            lambda v: f"/billing?property={v}",
            "property",
        ).classes("w-72")
        if not chosen:
            return None
        with ui.row().classes("w-full q-gutter-md no-wrap"):
            _run_card(viewer, chosen)
            _payment_card(viewer)
        charts = ui.row().classes("w-full q-gutter-md no-wrap")
        _charts(viewer, chosen, charts)
        _invoices(viewer, chosen, wanted, after)
    return None


def _run_card(viewer: Viewer, property_id: int) -> None:
    _ = viewer._
    with ui.card().classes("w-96"):
        ui.label(_("Billing run")).classes("text-subtitle1")
        period = ui.input(_("Month (YYYY-MM)"), value=viewer.today().strftime("%Y-%m")).props(
            "data-testid=period"
        )
        spinner = ui.spinner(size="lg").classes("hidden")
        result = ui.label().props("data-testid=run-result")

        async def start() -> None:
            if not viewer.can(P.BILLING_MANAGE):
                ui.notify(_("Your role may not run billing."), type="negative")
                return
            button.disable()
            spinner.classes(remove="hidden")
            try:
                out = await act_slowly(
                    viewer, lambda: _run(viewer, property_id, period.value or "")
                )
            finally:
                spinner.classes(add="hidden")
                button.enable()
            if out is not None:
                result.text = _("{n} invoices created, {s} items skipped").format(
                    n=out.invoices_created, s=len(out.skipped)
                )
                ui.navigate.reload()

        button = ui.button(_("Run billing"), on_click=start).props("data-testid=run-billing")


def _run(viewer: Viewer, property_id: int, period: str) -> billing_routes.RunOut:
    body = billing_routes.RunIn(property_id=property_id, period=period)
    with viewer.db() as session:
        return viewer.call(
            billing_routes.start_run, body=body, me=viewer.me, session=session, now=viewer.now()
        )


def _payment_card(viewer: Viewer) -> None:
    _ = viewer._
    with ui.card().classes("w-96"):
        ui.label(_("Record a payment")).classes("text-subtitle1")
        lease = ui.number(_("Lease #"), min=1, precision=0).props("data-testid=pay-lease")
        amount = ui.input(_("Amount (¥)")).props("data-testid=pay-amount")
        reference = ui.input(_("Reference")).props("data-testid=pay-reference")

        def record() -> None:
            try:
                fen = int(Decimal(amount.value or "").scaleb(2))
            except InvalidOperation:
                ui.notify(_("Enter an amount such as 1500.00"), type="negative")
                return
            body = billing_routes.PaymentIn(
                lease_id=int(lease.value or 0), amount_fen=fen, reference=reference.value or ""
            )
            with viewer.db() as session:
                viewer.call(
                    billing_routes.record_payment,
                    body=body,
                    me=viewer.me,
                    session=session,
                    now=viewer.now(),
                )
            ui.notify(_("Payment recorded"), type="positive")
            ui.navigate.reload()

        ui.button(_("Record payment"), on_click=lambda: act(viewer, record)).props(
            "data-testid=pay"
        )


def _report(viewer: Viewer, name: billing_routes.ReportName, property_id: int) -> list[Any]:
    with viewer.db() as session:
        out = viewer.call(
            billing_routes.report,
            name=name,
            me=viewer.me,
            session=session,
            now=viewer.now(),
            property_id=property_id,
        )
    items: list[Any] = out["items"]
    return items


def _charts(viewer: Viewer, property_id: int, row: ui.row) -> None:
    _ = viewer._
    t = viewer.texts
    aging = _report(viewer, billing_routes.ReportName.AR_AGING, property_id)
    totals = [sum(r[b] for r in aging) for b in AGING_BUCKETS]
    rate = _report(viewer, billing_routes.ReportName.COLLECTION_RATE, property_id)[0]
    with row:
        with ui.card().classes("w-[36rem]"):
            ui.label(_("AR aging")).classes("text-subtitle1")
            ui.label(_("Open balance {total}").format(total=t.money(sum(totals)))).props(
                "data-testid=ar-total"
            )
            ui.echart(
                {
                    "xAxis": {
                        "type": "category",
                        "data": [_(BUCKET_LABELS[b]) for b in AGING_BUCKETS],
                    },
                    "yAxis": {"type": "value", "name": "¥"},
                    "tooltip": {},
                    "series": [
                        {"type": "bar", "data": [x / 100 for x in totals], "color": "#00796b"}
                    ],
                }
            ).classes("h-64")
        with ui.card().classes("w-96"):
            ui.label(_("Collection rate this year")).classes("text-subtitle1")
            billed, collected = rate["billed_fen"], rate["collected_fen"]
            percent = round(100 * collected / billed, 1) if billed else 0
            ui.echart(
                {
                    "series": [
                        {
                            "type": "gauge",
                            "data": [{"value": percent}],
                            "detail": {"formatter": "{value}%"},
                            "max": 100,
                        }
                    ]
                }
            ).classes("h-64")
            ui.label(f"{t.money(collected)} / {t.money(billed)}").props("data-testid=collection")


def _invoices(viewer: Viewer, property_id: int, status: InvoiceStatus | None, after: int) -> None:
    _ = viewer._
    t = viewer.texts
    with viewer.db() as session:
        page = viewer.call(
            billing_routes.list_invoices,
            me=viewer.me,
            session=session,
            property_id=property_id,
            status=status,
            after=max(after, 0) or None,
            limit=PAGE_SIZE,
        )
    lang = "zh-CN" if t.locale == "zh_CN" else "en"
    ui.label(_("Invoices")).classes("text-h6")
    statuses = {"": _("All")} | {s.value: _(s.value) for s in InvoiceStatus}
    choice(
        statuses,
        status.value if status else "",
        _("Status"),
        lambda v: f"/billing?property={property_id}&status={v}",
        "status",
    ).classes("w-48")
    table = (
        ui.table(
            columns=columns(
                ("number", _("Invoice")),
                ("lease", _("Lease")),
                ("issued", _("Issued")),
                ("due", _("Due")),
                ("total", _("Total")),
                ("paid", _("Paid")),
                ("status", _("Status")),
                ("pdf", "PDF"),
            ),
            rows=[
                {
                    "id": x.id,
                    "number": x.number,
                    "lease": x.lease_id,
                    "issued": t.day(x.issue_date),
                    "due": t.day(x.due_date),
                    "total": t.money(x.total_fen),
                    "paid": t.money(x.paid_fen),
                    "status": _(x.status.value),
                    "pdf": f"/api/v1/invoices/{x.id}/pdf?lang={lang}",
                }
                for x in page.items
            ],
            row_key="id",
        )
        .props("dense flat")
        .classes("w-full")
        .props("data-testid=invoices")
    )
    table.add_slot(
        "body-cell-pdf",
        '<q-td :props="props"><a :href="props.value" target="_blank">PDF</a></q-td>',
    )
    if page.next_after is not None:
        ui.link(
            _("Next page"),
            f"/billing?property={property_id}&status={status or ''}&after={page.next_after}",
        )
