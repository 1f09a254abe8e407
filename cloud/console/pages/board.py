"""房态图: a building's units by floor, coloured by state (cloud.leases.board); a click opens
the unit with its lease and meters."""

from __future__ import annotations

from collections import defaultdict

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui
from sqlalchemy import select

from cloud.console.i18n import N_
from cloud.console.layout import STATE_COLOURS, act, choice, enter, frame
from cloud.console.viewer import Viewer
from cloud.leases.board import BoardUnit, UnitState, board
from cloud.models import Building, Lease, Meter, Property, Tenant, Unit
from cloud.security.authz import Permission

STATE_LABELS = {
    UnitState.VACANT: N_("Vacant"),
    UnitState.RESERVED: N_("Reserved"),
    UnitState.SIGNING: N_("Signing"),
    UnitState.TO_MOVE_IN: N_("To move in"),
    UnitState.OCCUPIED: N_("Occupied"),
    UnitState.ARREARS: N_("Arrears"),
    UnitState.EXPIRING_30: N_("Expiring ≤30 days"),
    UnitState.EXPIRING_60: N_("Expiring ≤60 days"),
    UnitState.OVERSTAYING: N_("Ended, not checked out"),
    UnitState.MAINTENANCE: N_("Maintenance"),
}


# Cells drawn at once: a tall building's board is shown a few whole floors a page, since the
# browser's time to draw grows with the cells (the legend still counts the whole building).
PAGE_CELLS = 100


def floor_pages(units: list[BoardUnit]) -> list[list[BoardUnit]]:
    """Whole floors (top down), each page holding at most PAGE_CELLS cells, or one floor."""
    pages: list[list[BoardUnit]] = []
    floors: dict[int, list[BoardUnit]] = defaultdict(list)
    for unit in units:
        floors[unit.floor].append(unit)
    for row in floors.values():
        if pages and len(pages[-1]) + len(row) <= PAGE_CELLS:
            pages[-1].extend(row)
        else:
            pages.append(list(row))
    return pages


@ui.page("/board")
def board_page(request: Request, building: int = 0, floors: int = 0) -> RedirectResponse | None:
    viewer = enter(request, Permission.PORTFOLIO_READ)
    if not isinstance(viewer, Viewer):
        return viewer
    _ = viewer._
    with viewer.db() as session:
        buildings = session.execute(
            select(Building.id, Building.name, Property.name)
            .join(Property, Property.id == Building.property_id)
            .where(Building.property_id.in_(viewer.me.property_ids))
            .order_by(Property.id, Building.id)
        ).all()
        options = {b.id: f"{b[2]} · {b[1]}" for b in buildings}
        chosen = building if building in options else next(iter(options), 0)
        units = board(session, chosen, viewer.today()) if chosen else []
    with frame(viewer, _("Room board")):
        choice(
            options, chosen or None, _("Building"), "/board?building={}".format, "building"
        ).classes("w-72")
        _legend(viewer, units)
        pages = floor_pages(units)
        shown = floors if 0 <= floors < len(pages) else 0
        if len(pages) > 1:
            choice(
                {i: _("Floors {top}-{bottom}").format(top=p[0].floor, bottom=p[-1].floor)
                 for i, p in enumerate(pages)},
                shown,
                _("Floors"),
                lambda i: f"/board?building={chosen}&floors={i}",
                "floors",
            ).classes("w-48")  # fmt: skip
        _grid(viewer, pages[shown] if pages else [])
    return None


def _legend(viewer: Viewer, units: list[BoardUnit]) -> None:
    counts: dict[UnitState, int] = defaultdict(int)
    for unit in units:
        counts[unit.state] += 1
    with ui.row().classes("q-gutter-sm"):
        for state, label in STATE_LABELS.items():
            colour = STATE_COLOURS[state.value]
            ui.badge(f"{viewer._(label)} {counts[state]}").style(
                f"background:{colour} !important"
            ).props(f"data-testid=legend-{state.value}")


def _grid(viewer: Viewer, units: list[BoardUnit]) -> None:
    floors: dict[int, list[BoardUnit]] = defaultdict(list)
    for unit in units:
        floors[unit.floor].append(unit)
    with ui.column().classes("q-gutter-xs"):
        for floor, row in floors.items():
            with ui.row().classes("items-center q-gutter-xs no-wrap"):
                ui.label(viewer._("Floor {n}").format(n=floor)).classes("w-16 text-grey-8")
                for unit in row:
                    _cell(viewer, unit)


def _cell(viewer: Viewer, unit: BoardUnit) -> None:
    colour = STATE_COLOURS[unit.state.value]
    with (
        ui.card()
        .classes("w-28 q-pa-xs cursor-pointer text-white")
        .style(f"background:{colour}")
        .on("click", lambda: act(viewer, lambda: _unit_dialog(viewer, unit)))
        .props(f"data-testid=unit-{unit.code}")
    ):
        ui.label(unit.code).classes("text-weight-bold")
        ui.label(viewer._(STATE_LABELS[unit.state])).classes("text-caption")


def _unit_dialog(viewer: Viewer, cell: BoardUnit) -> None:
    _ = viewer._
    t = viewer.texts
    with viewer.db() as session:
        unit = session.get_one(Unit, cell.unit_id)
        lease = session.get(Lease, cell.lease_id) if cell.lease_id else None
        tenant = session.get(Tenant, lease.primary_tenant_id) if lease else None
        meters = session.scalars(
            select(Meter).where(Meter.unit_id == unit.id).order_by(Meter.code)
        ).all()
        facts = [
            (_("Unit"), unit.code),
            (_("State"), _(STATE_LABELS[cell.state])),
            (_("Layout"), unit.layout),
            (_("Area"), f"{t.number(unit.area_m2)} m²"),
            (_("Base rent"), t.money(unit.base_rent_fen)),
        ]
        if lease is not None:
            facts += [
                (_("Lease"), f"#{lease.id} · {_(lease.status.value)}"),
                (_("Tenant"), tenant.name if tenant else ""),
                (_("Period"), f"{t.day(lease.start_date)} ~ {t.day(lease.end_date)}"),
                (_("Rent"), t.money(lease.rent_fen)),
                (_("Overdue"), t.money(cell.overdue_fen)),
            ]
        meter_rows = [
            {"code": m.code, "utility": _(m.utility.value), "gateway": m.gateway_id or ""}
            for m in meters
        ]
    with (
        ui.dialog(value=True) as dialog,
        ui.card().classes("w-96").props("data-testid=unit-dialog"),
    ):
        for name, value in facts:
            with ui.row().classes("w-full justify-between"):
                ui.label(name).classes("text-grey-8")
                ui.label(value)
        ui.label(_("Meters")).classes("text-subtitle2")
        ui.table(
            columns=[
                {"name": "code", "label": _("Meter"), "field": "code"},
                {"name": "utility", "label": _("Utility"), "field": "utility"},
                {"name": "gateway", "label": _("Gateway"), "field": "gateway"},
            ],
            rows=meter_rows,
        ).props("dense flat")
        if lease is not None:
            ui.link(_("Open lease"), f"/leases?lease={lease.id}")
        ui.button(_("Close"), on_click=dialog.close).props("flat")
