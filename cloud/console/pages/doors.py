"""Doors: what a door reported (filtered by door, result and days on the server, newest first,
paged) and each gateway's access-list sync (compiled, sent and applied versions), through the
API's door and gateway routes."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from cloud.api.paging import KeyPageQuery, PageQuery
from cloud.api.routes import doors as door_routes
from cloud.api.routes import gateways as gateway_routes
from cloud.billing.service.terms import day_after, day_start
from cloud.console.i18n import N_
from cloud.console.layout import columns, enter, frame
from cloud.console.viewer import Viewer
from cloud.security.authz import Permission

PAGE_SIZE = 50
DOOR_CHOICES = 200  # doors offered in the filter (a property has tens)
# The event types a door reports, by what they say happened.
RESULTS = {
    "access.granted": N_("granted"),
    "access.refused": N_("refused"),
    "door.decision": N_("face decision"),
    "lock.event": N_("lock event"),
}


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


@ui.page("/doors")
def doors_page(  # noqa: PLR0917 - the page's query string
    request: Request,
    door: int = 0,
    result: str = "",
    since: str = "",
    until: str = "",
    after: str = "",
    gateways_after: str = "",
) -> RedirectResponse | None:
    viewer = enter(request, Permission.DOORS_READ)
    if not isinstance(viewer, Viewer):
        return viewer
    _ = viewer._
    t = viewer.texts
    kind = result if result in RESULTS else None
    first, last = _day(since), _day(until)
    with viewer.db() as session:
        doors = viewer.call(
            door_routes.list_doors,
            me=viewer.me,
            session=session,
            page=PageQuery(limit=DOOR_CHOICES),
        ).items
        chosen = next((d for d in doors if d.id == door), doors[0] if doors else None)
        events = None
        if chosen is not None:
            events = viewer.call(
                door_routes.door_events,
                door_id=chosen.id,
                me=viewer.me,
                session=session,
                type=kind,
                since=None if first is None else day_start(first, t.tz),
                until=None if last is None else day_after(last, t.tz),
                after=after[:128] or None,
                limit=PAGE_SIZE,
            )
        gateways = viewer.call(
            gateway_routes.list_gateways,
            me=viewer.me,
            session=session,
            page=KeyPageQuery(after=gateways_after[:64] or None, limit=PAGE_SIZE),
        )
        syncs = [
            viewer.call(door_routes.access_sync, gateway_id=g.id, me=viewer.me, session=session)
            for g in gateways.items
        ]
    filters: dict[str, str] = {
        "door": str(chosen.id) if chosen else "",
        "result": kind or "",
        "since": first.isoformat() if first else "",
        "until": last.isoformat() if last else "",
    }
    with frame(viewer, _("Doors")):
        with ui.row().classes("items-end"):
            which = (
                ui.select(
                    {d.id: f"{d.name or d.code} ({d.gateway_id})" for d in doors},
                    value=chosen.id if chosen else None,
                    label=_("Door"),
                )
                .props("data-testid=door")
                .classes("w-64")
            )
            outcome = (
                ui.select(
                    {"": _("All")} | {k: _(v) for k, v in RESULTS.items()},
                    value=kind or "",
                    label=_("Result"),
                )
                .props("data-testid=result")
                .classes("w-40")
            )
            start = ui.input(_("From"), value=filters["since"]).props("type=date data-testid=since")
            end = ui.input(_("To"), value=filters["until"]).props("type=date data-testid=until")

            def apply() -> None:
                chosen_filters = {"door": which.value or "", "result": outcome.value or "",
                                  "since": start.value or "", "until": end.value or ""}  # fmt: skip
                ui.navigate.to(f"/doors?{urlencode(chosen_filters)}")

            ui.button(_("Filter"), on_click=apply).props("data-testid=filter")
        if chosen is None:
            ui.label(_("No doors yet."))
        elif events is not None:
            ui.table(
                columns=columns(
                    ("ts", _("Time")),
                    ("result", _("Result")),
                    ("detail", _("Detail")),
                ),
                rows=[
                    {
                        "id": e.id,
                        "ts": t.moment(e.ts),
                        "result": _(RESULTS.get(e.type, e.type)),
                        "detail": " ".join(
                            f"{k}={v}" for k, v in sorted(e.data.items()) if k != "door"
                        )[:200],
                    }
                    for e in events.items
                ],
                row_key="id",
            ).props("dense flat data-testid=door-events").classes("w-full")
            if events.next_after is not None:
                more = urlencode(filters | {"after": events.next_after})
                ui.link(_("Next page"), f"/doors?{more}").props("data-testid=events-next")
        ui.label(_("Access-list sync")).classes("text-h6 q-mt-md")
        ui.table(
            columns=columns(
                ("gateway", _("Gateway")),
                ("online", _("Online")),
                ("compiled", _("Compiled version")),
                ("sent", _("Sent version")),
                ("applied", _("Applied version")),
                ("applied_at", _("Applied at")),
                ("state", _("State")),
            ),
            rows=[
                {
                    "gateway": s.gateway_id,
                    "online": _("online") if s.online else _("offline"),
                    "compiled": s.compiled_version,
                    "sent": s.sent_version,
                    "applied": s.applied_version,
                    "applied_at": t.moment(s.applied_at),
                    "state": _("in sync") if s.in_sync else _("behind"),
                }
                for s in syncs
            ],
            row_key="gateway",
        ).props("dense flat data-testid=access-sync").classes("w-full")
        if gateways.next_after is not None:
            more = urlencode(filters | {"gateways_after": gateways.next_after})
            ui.link(_("Next page"), f"/doors?{more}")
    return None
