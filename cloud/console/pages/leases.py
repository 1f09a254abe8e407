"""Tenants and leases: a paged, filtered list (the API's list route); a lease opens with its
tenant (numbers masked; reveal for roles that may, audited by the API's reveal route) and the
lifecycle steps the lease allows."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui
from sqlalchemy import select

from cloud.api.paging import PageQuery
from cloud.api.routes import leases as lease_routes
from cloud.api.routes import tenants as tenant_routes
from cloud.console.i18n import N_
from cloud.console.layout import act, choice, columns, enter, frame
from cloud.console.viewer import Viewer
from cloud.leases.lifecycle import Action
from cloud.models import LeaseStatus, Tenant, Unit
from cloud.security.authz import Permission

P = Permission
PAGE_SIZE = 50
ACTION_LABELS = {
    Action.SIGN: N_("Sign"),
    Action.ACTIVATE: N_("Activate (move in)"),
    Action.END: N_("End"),
    Action.TERMINATE: N_("Terminate"),
    Action.RENEW: N_("Renew"),
}


@ui.page("/leases")
def leases_page(
    request: Request, status: str = "", after: int = 0, lease: int = 0
) -> RedirectResponse | None:
    viewer = enter(request, P.LEASES_READ)
    if not isinstance(viewer, Viewer):
        return viewer
    _ = viewer._
    t = viewer.texts
    wanted = LeaseStatus(status) if status in LeaseStatus.__members__.values() else None
    with viewer.db() as session:
        page = viewer.call(
            lease_routes.list_leases,
            me=viewer.me,
            session=session,
            page=PageQuery(after=max(after, 0) or None, limit=PAGE_SIZE),
            status=wanted,
        )
        unit_ids = [x.unit_id for x in page.items]
        tenant_ids = [x.primary_tenant_id for x in page.items]
        units = dict(session.execute(select(Unit.id, Unit.code).where(Unit.id.in_(unit_ids))).all())
        names = dict(
            session.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_(tenant_ids))).all()
        )
    with frame(viewer, _("Tenants & leases")):
        statuses = {"": _("All")} | {s.value: _(s.value) for s in LeaseStatus}
        choice(
            statuses,
            wanted.value if wanted else "",
            _("Status"),
            "/leases?status={}".format,
            "status",
        ).classes("w-48")
        table = (
            ui.table(
                columns=columns(
                    ("id", "#"),
                    ("unit", _("Unit")),
                    ("tenant", _("Tenant")),
                    ("status", _("Status")),
                    ("period", _("Period")),
                    ("rent", _("Rent")),
                ),
                rows=[
                    {
                        "id": x.id,
                        "unit": units.get(x.unit_id, ""),
                        "tenant": names.get(x.primary_tenant_id, ""),
                        "status": _(x.status.value),
                        "period": f"{t.day(x.start_date)} ~ {t.day(x.end_date)}",
                        "rent": t.money(x.rent_fen),
                    }
                    for x in page.items
                ],
                row_key="id",
            )
            .props("dense flat")
            .classes("w-full cursor-pointer")
        )
        table.on(
            "rowClick",
            lambda e: act(viewer, lambda: lease_dialog(viewer, int(e.args[1]["id"]))),
        )
        if page.next_after is not None:
            ui.link(_("Next page"), f"/leases?status={status}&after={page.next_after}")
    if lease:
        act(viewer, lambda: lease_dialog(viewer, lease))
    return None


def lease_dialog(viewer: Viewer, lease_id: int) -> None:
    _ = viewer._
    t = viewer.texts
    with viewer.db() as session:
        lease = viewer.call(
            lease_routes.get_lease, lease_id=lease_id, me=viewer.me, session=session
        )
        tenant = viewer.call(
            tenant_routes.get_tenant,
            tenant_id=lease.primary_tenant_id,
            me=viewer.me,
            session=session,
            keys=viewer.keys,
        )
        unit = session.get_one(Unit, lease.unit_id)
    with ui.dialog(value=True) as dialog, ui.card().classes("w-[32rem]"):
        ui.label(_("Lease #{id}").format(id=lease.id)).classes("text-h6")
        facts = [
            (_("Unit"), unit.code),
            (_("Status"), _(lease.status.value)),
            (_("Period"), f"{t.day(lease.start_date)} ~ {t.day(lease.end_date)}"),
            (_("Rent"), t.money(lease.rent_fen)),
            (_("Deposit"), t.money(lease.deposit_fen)),
            (_("Payment cycle"), _("every {n} months").format(n=lease.payment_cycle_months)),
            (_("Tenant"), tenant.name),
            (_("ID number"), tenant.id_number),
            (_("Phone"), tenant.phone or ""),
        ]
        values = {}
        for name, value in facts:
            with ui.row().classes("w-full justify-between"):
                ui.label(name).classes("text-grey-8")
                values[name] = ui.label(value).props(f"data-testid=fact-{name}")
        if lease.needs_supervised_account:
            ui.label(_("Collects more than the legal limit at once: supervised account needed."))
        with ui.row():
            for action in lease.allowed_actions:
                if action == Action.RENEW:
                    continue
                ui.button(
                    _(ACTION_LABELS[Action(action)]),
                    on_click=lambda a=action: act(
                        viewer, lambda: _confirm(viewer, dialog, lease_id, a)
                    ),
                ).props("unelevated color=teal").props(f"data-testid=action-{action}")
            if viewer.can(P.TENANTS_REVEAL):
                ui.button(
                    _("Reveal"),
                    on_click=lambda: act(
                        viewer, lambda: _reveal(viewer, tenant.id, values, _("ID number"))
                    ),
                ).props("flat").props("data-testid=reveal")
            ui.button(_("Close"), on_click=dialog.close).props("flat")


def _confirm(viewer: Viewer, dialog: ui.dialog, lease_id: int, action: str) -> None:
    """Signing and moving in go at once; ending or terminating asks first, with a reason."""
    if action not in (Action.END, Action.TERMINATE):
        _step(viewer, dialog, lease_id, action, "")
        return
    _ = viewer._
    with ui.dialog(value=True) as confirm, ui.card():
        ui.label(
            _("{action} lease #{id}?").format(action=_(ACTION_LABELS[Action(action)]), id=lease_id)
        )
        reason = ui.input(_("Reason")).props("maxlength=500").props("data-testid=reason")

        def go() -> None:
            confirm.close()
            _step(viewer, dialog, lease_id, action, reason.value or "")

        with ui.row():
            ui.button(_("Confirm"), on_click=lambda: act(viewer, go)).props("color=negative")
            ui.button(_("Cancel"), on_click=confirm.close).props("flat")


def _step(viewer: Viewer, dialog: ui.dialog, lease_id: int, action: str, reason: str) -> None:
    body = lease_routes.TransitionIn(
        action=Action(action),
        terminated_on=viewer.today() if action == Action.TERMINATE else None,
        reason=reason,
    )
    with viewer.db() as session:
        viewer.call(
            lease_routes.transition,
            lease_id=lease_id,
            body=body,
            me=viewer.me,
            session=session,
            now=viewer.now(),
        )
    dialog.close()
    ui.notify(viewer._("Done"), type="positive")
    lease_dialog(viewer, lease_id)


def _reveal(viewer: Viewer, tenant_id: int, labels: dict[str, ui.label], id_label: str) -> None:
    body = tenant_routes.RevealIn(fields=["id_number", "phone"], reason="console lease review")
    with viewer.db() as session:
        shown = viewer.call(
            tenant_routes.reveal,
            tenant_id=tenant_id,
            body=body,
            me=viewer.me,
            session=session,
            keys=viewer.keys,
            now=viewer.now(),
        )
    labels[id_label].text = shown.values.get("id_number") or ""
    labels[viewer._("Phone")].text = shown.values.get("phone") or ""
