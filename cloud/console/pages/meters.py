"""Meters: the organisation's meters in scope (paged, by utility), and a meter's latest
readings with a chart, both through the API's routes."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from cloud.api.paging import KeyPageQuery
from cloud.api.routes import portfolio as portfolio_routes
from cloud.api.routes import readings as reading_routes
from cloud.console.layout import act, choice, columns, enter, frame
from cloud.console.viewer import Viewer
from cloud.models import Utility
from cloud.security.authz import Permission

PAGE_SIZE = 50
CHART_READINGS = 200


@ui.page("/meters")
def meters_page(request: Request, utility: str = "", after: str = "") -> RedirectResponse | None:
    viewer = enter(request, Permission.METERS_READ)
    if not isinstance(viewer, Viewer):
        return viewer
    _ = viewer._
    wanted = Utility(utility) if utility in Utility.__members__.values() else None
    with viewer.db() as session:
        page = viewer.call(
            portfolio_routes.list_meters,
            me=viewer.me,
            session=session,
            page=KeyPageQuery(after=after[:64] or None, limit=PAGE_SIZE),
            utility=wanted,
        )
    with frame(viewer, _("Meters")):
        options = {"": _("All")} | {u.value: _(u.value) for u in Utility}
        choice(
            options,
            wanted.value if wanted else "",
            _("Utility"),
            "/meters?utility={}".format,
            "utility",
        ).classes("w-48")
        table = (
            ui.table(
                columns=columns(
                    ("id", _("Meter")),
                    ("utility", _("Utility")),
                    ("kind", _("Kind")),
                    ("profile", _("Model")),
                    ("gateway", _("Gateway")),
                ),
                rows=[
                    {
                        "id": m.id,
                        "utility": _(m.utility.value),
                        "kind": m.kind.value,
                        "profile": m.profile,
                        "gateway": m.gateway_id or "",
                    }
                    for m in page.items
                ],
                row_key="id",
            )
            .props("dense flat data-testid=meters")
            .classes("w-full cursor-pointer")
        )
        table.on("rowClick", lambda e: act(viewer, lambda: _readings(viewer, str(e.args[1]["id"]))))
        if page.next_after is not None:
            ui.link(_("Next page"), f"/meters?utility={utility}&after={page.next_after}")
    return None


def _readings(viewer: Viewer, code: str) -> None:
    _ = viewer._
    t = viewer.texts
    with viewer.db() as session:
        page = viewer.call(
            reading_routes.list_readings,
            meter_id=code,
            me=viewer.me,
            session=session,
            limit=CHART_READINGS,
        )
    by_point: dict[str, list[list[object]]] = {}
    for r in reversed(page.items):
        if r.value is not None:
            by_point.setdefault(r.point, []).append([r.ts.isoformat(), r.value])
    with ui.dialog(value=True) as dialog, ui.card().classes("w-[48rem] max-w-none"):
        ui.label(code).classes("text-h6")
        if not page.items:
            ui.label(_("No readings yet."))
        else:
            latest = page.items[0]
            ui.label(
                _("Latest: {point} {value} {unit} at {ts}").format(
                    point=latest.point,
                    value=latest.text if latest.value is None else t.number(latest.value),
                    unit=latest.unit,
                    ts=t.moment(latest.ts),
                )
            )
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
            ).classes("w-full h-72")
        ui.button(_("Close"), on_click=dialog.close).props("flat")
