"""Meters: the organisation's meters in scope (paged, by utility or unit) with their health;
a meter opens its latest readings, a daily usage chart of the meter and of its unit (billing's
own usage rules), and, for roles that may, recording a swap through the API's swap route."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from cloud.api.deps import scoped_meter
from cloud.api.paging import KeyPageQuery
from cloud.api.routes import meter_swaps as swap_routes
from cloud.api.routes import readings as reading_routes
from cloud.billing.service.swaps import SwapRequest
from cloud.console.i18n import N_
from cloud.console.layout import act, choice, columns, enter, frame
from cloud.console.viewer import Viewer
from cloud.meter_health import Health
from cloud.models import MeterKind, Utility
from cloud.security.authz import Permission

P = Permission
PAGE_SIZE = 50
CHART_READINGS = 200
CHART_DAYS = 30
HEALTH_LABELS = {
    Health.OK: N_("healthy"),
    Health.SILENT: N_("silent"),
    Health.ERRORS: N_("errors"),
    Health.UNBOUND: N_("no gateway"),
}


@ui.page("/meters")
def meters_page(
    request: Request, utility: str = "", unit: int = 0, after: str = ""
) -> RedirectResponse | None:
    viewer = enter(request, P.METERS_READ)
    if not isinstance(viewer, Viewer):
        return viewer
    _ = viewer._
    t = viewer.texts
    wanted = Utility(utility) if utility in Utility.__members__.values() else None
    unit_id = unit if 0 < unit < 2**31 else None
    now = viewer.now()
    page = viewer.send(
        reading_routes.meter_health,
        page=KeyPageQuery(after=after[:64] or None, limit=PAGE_SIZE),
        property_id=None,
        unit_id=unit_id,
        utility=wanted,
    )
    query = f"utility={wanted.value if wanted else ''}&unit={unit_id or ''}"
    with frame(viewer, _("Meters")):
        options = {"": _("All")} | {u.value: _(u.value) for u in Utility}
        choice(
            options,
            wanted.value if wanted else "",
            _("Utility"),
            lambda v: f"/meters?utility={v}&unit={unit_id or ''}",
            "utility",
        ).classes("w-48")
        rows = []
        for m in page.items:
            age = (
                ""
                if m.last_reading is None
                else _("{minutes} min ago").format(
                    minutes=t.number(int((now - m.last_reading).total_seconds() // 60))
                )
            )
            rows.append(
                {
                    "id": m.id,
                    "utility": _(m.utility.value),
                    "unit": m.unit_id or "",
                    "gateway": m.gateway_id or "",
                    "last": f"{t.moment(m.last_reading)} ({age})" if age else "",
                    "bad": t.number(m.bad_readings),
                    "health": _(HEALTH_LABELS[m.state]),
                }
            )
        table = (
            ui.table(
                columns=columns(
                    ("id", _("Meter")),
                    ("utility", _("Utility")),
                    ("unit", _("Unit")),
                    ("gateway", _("Gateway")),
                    ("last", _("Last reading")),
                    ("bad", _("Bad readings (1 h)")),
                    ("health", _("Health")),
                ),
                rows=rows,
                row_key="id",
            )
            .props("dense flat data-testid=meters")
            .classes("w-full cursor-pointer")
        )
        table.on("rowClick", lambda e: act(viewer, lambda: _meter(viewer, str(e.args[1]["id"]))))
        if page.next_after is not None:
            ui.link(_("Next page"), f"/meters?{query}&after={page.next_after}")
    return None


def _meter(viewer: Viewer, code: str) -> None:
    _ = viewer._
    t = viewer.texts
    with viewer.db() as session:
        readings = viewer.call(
            reading_routes.list_readings,
            meter_id=code,
            me=viewer.me,
            session=session,
            limit=CHART_READINGS,
        )
        submeter = scoped_meter(session, viewer.me, code).kind is MeterKind.SUBMETER
    usage = viewer.send(reading_routes.daily_usage, meter_id=code, days=CHART_DAYS, last=None)
    with ui.dialog(value=True) as dialog, ui.card().classes("w-[56rem] max-w-none"):
        ui.label(code).classes("text-h6")
        if not readings.items:
            ui.label(_("No readings yet."))
        else:
            latest = readings.items[0]
            ui.label(
                _("Latest: {point} {value} {unit} at {ts}").format(
                    point=latest.point,
                    value=latest.text if latest.value is None else t.number(latest.value),
                    unit=latest.unit,
                    ts=t.moment(latest.ts),
                )
            )
            by_point: dict[str, list[list[object]]] = {}
            for r in reversed(readings.items):
                if r.value is not None:
                    by_point.setdefault(r.point, []).append([r.ts.isoformat(), r.value])
            ui.echart(
                {
                    "tooltip": {"trigger": "axis"},
                    "legend": {},
                    "xAxis": {"type": "time"},
                    "yAxis": {"type": "value", "scale": True},
                    "series": [
                        {"name": p, "type": "line", "showSymbol": False, "data": d}
                        for p, d in by_point.items()
                    ],
                }
            ).classes("w-full h-64")
        if usage.days:
            title = _("Daily usage, last {days} days ({point})")
            ui.label(title.format(days=CHART_DAYS, point=usage.point))
            mine = [d.meter for d in usage.days]
            unit = [d.unit for d in usage.days]
            series = [(_("This meter"), mine)] + ([(_("The unit"), unit)] if any(unit) else [])
            ui.echart(
                {
                    "tooltip": {"trigger": "axis"},
                    "legend": {},
                    "xAxis": {"type": "category", "data": [t.day(d.day) for d in usage.days]},
                    "yAxis": {"type": "value"},
                    "series": [
                        {
                            "name": name,
                            "type": "bar",
                            "data": [None if q is None else float(q) for q in values],
                        }
                        for name, values in series
                    ],
                }
            ).classes("w-full h-64").props("data-testid=daily-usage")
        if submeter and viewer.can(P.METERS_WRITE):
            _swap_form(viewer, code)
        ui.button(_("Close"), on_click=dialog.close).props("flat")


def _swap_form(viewer: Viewer, code: str) -> None:
    _ = viewer._
    with ui.expansion(_("Record a meter swap")).classes("w-full").props("data-testid=swap"):
        new = ui.input(_("New meter")).props("maxlength=64 data-testid=swap-new")
        when = ui.input(_("Swapped at (YYYY-MM-DD HH:MM)")).props(
            "maxlength=16 data-testid=swap-at"
        )
        old_final = ui.input(_("Old meter's final reading")).props(
            "maxlength=20 data-testid=swap-old-final"
        )
        new_initial = ui.input(_("New meter's first reading")).props(
            "maxlength=20 data-testid=swap-new-initial"
        )
        done = ui.label().props("data-testid=swap-answer")

        def record() -> None:
            try:
                at = datetime.fromisoformat(when.value or "")
                final, initial = Decimal(old_final.value), Decimal(new_initial.value)
            except (ValueError, InvalidOperation):
                ui.notify(_("Enter a time and two readings."), type="negative")
                return
            body = SwapRequest(
                new_meter_id=new.value or "",
                swapped_at=at if at.tzinfo else at.replace(tzinfo=viewer.texts.tz),
                old_final=final,
                new_initial=initial,
            )
            out = viewer.send(swap_routes.swap_meter, meter_id=code, body=body)
            done.text = _("Swap recorded: {old} → {new}").format(
                old=out.old_meter_id, new=out.new_meter_id
            )

        ui.button(_("Record swap"), on_click=lambda: act(viewer, record)).props(
            "color=primary data-testid=swap-record"
        )
