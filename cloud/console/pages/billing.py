"""Billing: run a month (with progress), the invoices (paged, PDFs from the API, late fees),
payments, usage holds to review, and the AR aging and collection-rate charts, all through the
API's billing routes; the rent roll has its own page (billing_review)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from cloud.api.progress import ProgressOut
from cloud.api.routes import billing as billing_routes
from cloud.billing.service.reports import AGING_BUCKETS
from cloud.console.i18n import N_
from cloud.console.layout import act, act_slowly, choice, columns, enter, frame, my_properties, yuan
from cloud.console.pages.billing_review import holds_section, runs_section
from cloud.console.viewer import Viewer
from cloud.models import InvoiceStatus
from cloud.progress import DONE
from cloud.security.authz import Permission

P = Permission
PAGE_SIZE = 50
POLL_S = 0.5  # how often the run card reads the run's progress
MONTH = re.compile(r"\d{4}-\d{2}")
PHASES = {
    "starting": N_("Starting"),
    "rent": N_("Rent"),
    "utilities": N_("Utilities"),
    "common area": N_("Common area"),
    "repairs": N_("Repairs"),
    "writing": N_("Writing invoices"),
    "done": N_("Done"),
    "failed": N_("Failed"),
}
BUCKET_LABELS = {
    "current": N_("Not yet due"),
    "d0_30": N_("0-30 days"),
    "d31_60": N_("31-60 days"),
    "d61_90": N_("61-90 days"),
    "d90_plus": N_("Over 90 days"),
}
METHODS = {
    "transfer": N_("Bank transfer"),
    "wechat": N_("WeChat Pay"),
    "alipay": N_("Alipay"),
    "cash": N_("Cash"),
    "card": N_("Card"),
}


@ui.page("/billing")
def billing_page(
    request: Request,
    *,
    property: int = 0,
    status: str = "",
    after: int = 0,
    holds_after: int = 0,
    runs_after: int = 0,
    period: str = "",
) -> RedirectResponse | None:
    viewer = enter(request, P.REPORTS_READ)
    if not isinstance(viewer, Viewer):
        return viewer
    _ = viewer._
    properties = my_properties(viewer)
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
        ui.link(_("Rent roll"), f"/billing/rent-roll?property={chosen}").props(
            "data-testid=rent-roll-link"
        )
        with ui.row().classes("w-full q-gutter-md no-wrap"):
            month = period if MONTH.fullmatch(period) else viewer.today().strftime("%Y-%m")
            _run_card(viewer, chosen, month)
            _payment_card(viewer)
        if viewer.can(P.BILLING_MANAGE):
            runs_section(viewer, chosen, runs_after)
        charts = ui.row().classes("w-full q-gutter-md no-wrap")
        _charts(viewer, chosen, charts)
        _invoices(viewer, chosen, wanted, after)
        if viewer.can(P.BILLING_MANAGE):
            holds_section(viewer, chosen, holds_after)
    return None


def _run_card(viewer: Viewer, property_id: int, month: str) -> None:
    """Start a run; its progress is polled from the API's progress route, so every tab on the
    property and month shows a run however it was started (here, another tab, the API)."""
    _ = viewer._
    with ui.card().classes("w-96"):
        ui.label(_("Billing run")).classes("text-subtitle1")
        period = ui.input(_("Month (YYYY-MM)"), value=month).props("data-testid=period")
        bar = ui.linear_progress(value=0, show_value=False).props("data-testid=run-bar")
        progress = ui.label().props("data-testid=run-progress")
        result = ui.label().props("data-testid=run-result")

        def poll() -> None:
            found = _progress(viewer, property_id, period.value or "")
            bar.set_visibility(found is not None)
            if found is None:
                progress.set_text("")
                return
            bar.set_value(1.0 if found.phase == DONE else found.done / max(found.total, 1))
            progress.set_text(
                _("{phase}: {done} / {total}").format(
                    phase=_(PHASES.get(found.phase, found.phase)),
                    done=viewer.texts.number(found.done),
                    total=viewer.texts.number(found.total),
                )
            )

        poll()
        ui.timer(POLL_S, poll)

        async def start() -> None:
            if not viewer.can(P.BILLING_MANAGE):
                ui.notify(_("Your role may not run billing."), type="negative")
                return
            chosen = period.value or ""
            button.disable()
            try:
                out = await act_slowly(viewer, lambda: _run(viewer, property_id, chosen))
            finally:
                button.enable()
            if out is not None:
                result.text = _("{n} invoices created, {s} items skipped").format(
                    n=out.invoices_created, s=len(out.skipped)
                )
                ui.navigate.to(f"/billing?property={property_id}&period={chosen}")

        button = ui.button(_("Run billing"), on_click=start).props("data-testid=run-billing")


def _progress(viewer: Viewer, property_id: int, period: str) -> ProgressOut | None:
    if not MONTH.fullmatch(period) or not viewer.can(P.BILLING_MANAGE):
        return None
    return viewer.call(
        billing_routes.run_progress, me=viewer.me, property_id=property_id, period=period
    )


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
        method = ui.select(
            {m: _(label) for m, label in METHODS.items()}, value="transfer", label=_("Method")
        ).props("data-testid=pay-method")
        reference = ui.input(_("Reference")).props("data-testid=pay-reference")

        def record() -> None:
            fen = yuan(viewer, amount.value)
            if fen is None:
                return
            body = billing_routes.PaymentIn(
                lease_id=int(lease.value or 0),
                amount_fen=fen,
                method=method.value or "transfer",
                reference=reference.value or "",
            )
            viewer.send(billing_routes.record_payment, body=body)
            ui.notify(_("Payment recorded"), type="positive")
            ui.navigate.reload()

        ui.button(_("Record payment"), on_click=lambda: act(viewer, record)).props(
            "data-testid=pay"
        )


def _report(viewer: Viewer, name: billing_routes.ReportName, property_id: int) -> list[Any]:
    out = viewer.send(billing_routes.report, name=name, property_id=property_id)
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
                ("late_fee", _("Late fees")),
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
                    "late_fee": t.money(x.late_fee_fen) if x.late_fee_fen else "",
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
