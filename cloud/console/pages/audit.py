"""The audit log, paged on the server by the API's own list route (same scope rules)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from cloud.api.paging import PageQuery
from cloud.api.routes.audit import list_audit
from cloud.console.layout import act, columns, enter, frame
from cloud.console.viewer import Viewer
from cloud.security.authz import Permission

PAGE_SIZE = 50


@ui.page("/audit")
def audit_page(request: Request, after: int = 0, action: str = "") -> RedirectResponse | None:
    viewer = enter(request, Permission.AUDIT_READ)
    if not isinstance(viewer, Viewer):
        return viewer
    _ = viewer._
    t = viewer.texts
    with viewer.db() as session:
        page = list_audit(
            viewer.me,
            session,
            PageQuery(after=max(after, 0) or None, limit=PAGE_SIZE),
            action=action[:64] or None,
        )
    with frame(viewer, _("Audit log")):
        with ui.row().classes("items-center"):
            box = (
                ui.input(_("Action"), value=action)
                .props("dense clearable")
                .props("data-testid=action")
            )
            ui.button(
                _("Filter"),
                on_click=lambda: act(
                    viewer, lambda: ui.navigate.to(f"/audit?action={quote(box.value or '')}")
                ),
            )
        ui.table(
            columns=columns(
                ("ts", _("Time")),
                ("username", _("User")),
                ("action", _("Action")),
                ("target", _("Target")),
                ("outcome", _("Outcome")),
                ("ip", _("Address")),
            ),
            rows=[
                {
                    "id": e.id,
                    "ts": t.moment(e.ts),
                    "username": e.username,
                    "action": e.action,
                    "target": f"{e.target_type} {e.target_id}".strip(),
                    "outcome": e.outcome,
                    "ip": e.ip,
                }
                for e in page.items
            ],
            row_key="id",
        ).props("dense flat").classes("w-full").props("data-testid=audit-table")
        if page.next_after is not None:
            ui.link(_("Next page"), f"/audit?after={page.next_after}&action={quote(action)}")
    return None
