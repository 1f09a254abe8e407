"""Gateways: online state, last seen, outbox backlog and drops (the API's registry route), and
signed commands through the API's command route: ping, and a door unlock after a confirmation
for roles that may open doors. Versions come back in a ping's answer."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from cloud.api.paging import KeyPageQuery
from cloud.api.routes import commands as command_routes
from cloud.api.routes import gateways as gateway_routes
from cloud.console.layout import act, columns, enter, frame
from cloud.console.viewer import Viewer
from cloud.security.authz import Permission

P = Permission
PAGE_SIZE = 50


@ui.page("/gateways")
def gateways_page(request: Request, after: str = "") -> RedirectResponse | None:
    viewer = enter(request, P.METERS_READ)
    if not isinstance(viewer, Viewer):
        return viewer
    _ = viewer._
    t = viewer.texts
    with viewer.db() as session:
        page = viewer.call(
            gateway_routes.list_gateways,
            me=viewer.me,
            session=session,
            page=KeyPageQuery(after=after[:64] or None, limit=PAGE_SIZE),
        )
    with frame(viewer, _("Gateways")):
        table = (
            ui.table(
                columns=columns(
                    ("id", _("Gateway")),
                    ("name", _("Name")),
                    ("building", _("Building")),
                    ("online", _("Online")),
                    ("last_seen", _("Last seen")),
                    ("pending", _("Backlog")),
                    ("dropped", _("Dropped")),
                ),
                rows=[
                    {
                        "id": g.id,
                        "name": g.name,
                        "building": g.building,
                        "online": _("online") if g.online else _("offline"),
                        "last_seen": t.moment(g.last_seen),
                        "pending": t.number(g.pending),
                        "dropped": t.number(g.dropped),
                    }
                    for g in page.items
                ],
                row_key="id",
            )
            .props("dense flat data-testid=gateways")
            .classes("w-full cursor-pointer")
        )
        table.on("rowClick", lambda e: act(viewer, lambda: _commands(viewer, str(e.args[1]["id"]))))
        if page.next_after is not None:
            ui.link(_("Next page"), f"/gateways?after={page.next_after}")
    return None


def _commands(viewer: Viewer, gateway_id: str) -> None:
    _ = viewer._
    with ui.dialog(value=True) as dialog, ui.card().classes("w-96"):
        ui.label(gateway_id).classes("text-h6")
        answer = ui.label().props("data-testid=command-answer")
        if viewer.can(P.GATEWAYS_COMMAND):
            ui.button(
                _("Ping"),
                on_click=lambda: act(viewer, lambda: _send(viewer, gateway_id, "ping", {}, answer)),
            ).props("data-testid=ping")
        if viewer.can(P.DOORS_UNLOCK):
            door = ui.input(_("Door")).props("maxlength=64 data-testid=door")
            ui.button(
                _("Unlock door"),
                on_click=lambda: _confirm_unlock(viewer, gateway_id, door.value or "", answer),
            ).props("color=negative data-testid=unlock")
        ui.button(_("Close"), on_click=dialog.close).props("flat")


def _confirm_unlock(viewer: Viewer, gateway_id: str, door: str, answer: ui.label) -> None:
    _ = viewer._
    with ui.dialog(value=True) as confirm, ui.card():
        ui.label(_("Open door {door} now? This is audited.").format(door=door))

        def go() -> None:
            confirm.close()
            _send(viewer, gateway_id, "door.unlock", {"door": door}, answer)

        with ui.row():
            ui.button(_("Confirm"), on_click=lambda: act(viewer, go)).props(
                "color=negative data-testid=confirm"
            )
            ui.button(_("Cancel"), on_click=confirm.close).props("flat")


def _send(
    viewer: Viewer, gateway_id: str, name: str, args: dict[str, str], answer: ui.label
) -> None:
    body = command_routes.CommandIn(name=name, args=args)
    out = viewer.send(command_routes.send_command, gateway_id=gateway_id, body=body)
    answer.text = viewer._("Command {id}: {state}").format(id=out.id, state=out.state)
