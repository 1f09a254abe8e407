"""Tenants and leases: a paged, filtered list (the API's list route); a lease opens with its
tenant (numbers masked; reveal for roles that may, audited by the API's reveal route), its
contract PDF, its account and the lifecycle steps the lease allows (forms in lease_forms)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui
from sqlalchemy import select

from cloud.api.paging import PageQuery
from cloud.api.routes import billing as billing_routes
from cloud.api.routes import leases as lease_routes
from cloud.api.routes import tenants as tenant_routes
from cloud.console.i18n import N_
from cloud.console.layout import act, choice, columns, enter, frame
from cloud.console.pages.lease_forms import (
    deposit_dialog,
    new_lease_dialog,
    new_tenant_dialog,
    renew_dialog,
    settlement_dialog,
)
from cloud.console.viewer import Viewer
from cloud.leases.lifecycle import Action
from cloud.models import DepositSettlementRow, LeaseStatus, Tenant, Unit
from cloud.security.authz import Permission, may_see
from cloud.security.pii import PII_FIELDS, PiiField

P = Permission
PAGE_SIZE = 50
ACTION_LABELS = {
    Action.SIGN: N_("Sign"),
    Action.ACTIVATE: N_("Activate (move in)"),
    Action.END: N_("End"),
    Action.TERMINATE: N_("Terminate"),
    Action.RENEW: N_("Renew"),
}
PII_LABELS = {
    "id_number": N_("ID number"),
    "phone": N_("Phone"),
    "bank_card": N_("Bank card"),
    "email": N_("E-mail"),
}
CLOSED = (LeaseStatus.ENDED, LeaseStatus.TERMINATED)


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
        with ui.row().classes("items-center q-gutter-md"):
            statuses = {"": _("All")} | {s.value: _(s.value) for s in LeaseStatus}
            choice(
                statuses,
                wanted.value if wanted else "",
                _("Status"),
                "/leases?status={}".format,
                "status",
            ).classes("w-48")
            _toolbar(viewer)
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
        table.on("rowClick", lambda e: _open(viewer)(int(e.args[1]["id"])))
        if page.next_after is not None:
            ui.link(_("Next page"), f"/leases?status={status}&after={page.next_after}")
    if lease:
        act(viewer, lambda: lease_dialog(viewer, lease))
    return None


def _open(viewer: Viewer) -> Callable[[int], None]:
    return lambda lease_id: act(viewer, lambda: lease_dialog(viewer, lease_id))


def _toolbar(viewer: Viewer) -> None:
    """New tenant (then straight on to their lease) and new lease, for roles that write them."""
    _ = viewer._
    if viewer.can(P.TENANTS_WRITE):

        def then(tenant_id: int, property_id: int) -> None:
            if viewer.can(P.LEASES_WRITE):
                new_lease_dialog(viewer, _open(viewer), tenant_id, property_id)

        ui.button(
            _("New tenant"), on_click=lambda: act(viewer, lambda: new_tenant_dialog(viewer, then))
        ).props("outline color=teal data-testid=new-tenant")
    if viewer.can(P.LEASES_WRITE):
        ui.button(
            _("New lease"),
            on_click=lambda: act(viewer, lambda: new_lease_dialog(viewer, _open(viewer))),
        ).props("outline color=teal data-testid=new-lease")


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
        co_names = session.scalars(
            select(Tenant.name).where(Tenant.id.in_(lease.co_tenant_ids)).order_by(Tenant.id)
        ).all()
        account = None
        if viewer.can(P.BILLING_READ):
            account = viewer.call(
                billing_routes.lease_account, lease_id=lease_id, me=viewer.me, session=session
            )
        settled = session.scalar(
            select(DepositSettlementRow.id).where(DepositSettlementRow.lease_id == lease_id)
        )
    lang = "zh-CN" if t.locale == "zh_CN" else "en"
    with ui.dialog(value=True) as dialog, ui.card().classes("w-[34rem]"):
        ui.label(_("Lease #{id}").format(id=lease.id)).classes("text-h6")
        facts = [
            (_("Unit"), unit.code),
            (_("Status"), _(lease.status.value)),
            (_("Period"), f"{t.day(lease.start_date)} ~ {t.day(lease.end_date)}"),
            (_("Rent"), t.money(lease.rent_fen)),
            (_("Deposit"), t.money(lease.deposit_fen)),
            (_("Payment cycle"), _("every {n} months").format(n=lease.payment_cycle_months)),
            (_("Tenant"), tenant.name),
            (_("Co-tenants"), ", ".join(co_names)),
            *((_(PII_LABELS[f]), getattr(tenant, f) or "") for f in PII_FIELDS),
        ]
        if account is not None:
            facts += [
                (_("Balance owed"), t.money(account.balance_fen)),
                (_("Unapplied credit"), t.money(account.credit_fen)),
                (_("Deposit billed"), t.money(account.deposit_billed_fen)),
                (_("Deposit received"), t.money(account.deposit_received_fen)),
            ]
        values = {}
        for name, value in facts:
            with ui.row().classes("w-full justify-between"):
                ui.label(name).classes("text-grey-8")
                values[name] = ui.label(value).props(f"data-testid=fact-{name}")
        if lease.needs_supervised_account:
            ui.label(_("Collects more than the legal limit at once: supervised account needed."))
        ui.link(
            _("Contract (PDF)"), f"/api/v1/leases/{lease.id}/contract.pdf?lang={lang}", True
        ).props("data-testid=contract-pdf")
        with ui.row():
            for action in lease.allowed_actions if viewer.can(P.LEASES_WRITE) else ():
                ui.button(
                    _(ACTION_LABELS[Action(action)]),
                    on_click=lambda a=action: act(
                        viewer, lambda: _confirm(viewer, dialog, lease, a)
                    ),
                ).props("unelevated color=teal").props(f"data-testid=action-{action}")
            if (
                account is not None
                and not settled
                and account.deposit_received_fen < lease.deposit_fen
                and viewer.can(P.PAYMENTS_REFUND)
            ):
                ui.button(
                    _("Receive deposit"),
                    on_click=lambda: act(
                        viewer, lambda: deposit_dialog(viewer, dialog, lease_id, _open(viewer))
                    ),
                ).props("outline color=teal data-testid=deposit-receive")
            if lease.status in CLOSED and not settled and viewer.can(P.PAYMENTS_REFUND):
                ui.button(
                    _("Settle deposit"),
                    on_click=lambda: act(
                        viewer, lambda: settlement_dialog(viewer, lease_id, _open(viewer))
                    ),
                ).props("unelevated color=negative data-testid=settle")
            shown = [f for f in PII_FIELDS if may_see(viewer.me.role, f)]
            if viewer.can(P.TENANTS_REVEAL) and shown:
                ui.button(
                    _("Reveal"),
                    on_click=lambda: act(viewer, lambda: _reveal(viewer, tenant.id, values, shown)),
                ).props("flat").props("data-testid=reveal")
            ui.button(_("Close"), on_click=dialog.close).props("flat")


def _confirm(viewer: Viewer, dialog: ui.dialog, lease: lease_routes.LeaseOut, action: str) -> None:
    """Signing and moving in go at once; renewing asks the terms; ending or terminating asks
    first, with a reason."""
    if action == Action.RENEW:
        dialog.close()
        renew_dialog(viewer, lease.id, lease.rent_fen, _open(viewer))
        return
    if action not in (Action.END, Action.TERMINATE):
        _step(viewer, dialog, lease.id, action, "")
        return
    _ = viewer._
    with ui.dialog(value=True) as confirm, ui.card():
        ui.label(
            _("{action} lease #{id}?").format(action=_(ACTION_LABELS[Action(action)]), id=lease.id)
        )
        reason = ui.input(_("Reason")).props("maxlength=500").props("data-testid=reason")

        def go() -> None:
            confirm.close()
            _step(viewer, dialog, lease.id, action, reason.value or "")

        with ui.row():
            ui.button(_("Confirm"), on_click=lambda: act(viewer, go)).props(
                "color=negative data-testid=confirm"
            )
            ui.button(_("Cancel"), on_click=confirm.close).props("flat")


def _step(viewer: Viewer, dialog: ui.dialog, lease_id: int, action: str, reason: str) -> None:
    """One lifecycle step; a move-out goes on to the deposit settlement for roles that settle."""
    body = lease_routes.TransitionIn(
        action=Action(action),
        terminated_on=viewer.today() if action == Action.TERMINATE else None,
        reason=reason,
    )
    after = viewer.send(lease_routes.transition, lease_id=lease_id, body=body)
    dialog.close()
    ui.notify(viewer._("Done"), type="positive")
    if after.status in CLOSED and after.activated_at and viewer.can(P.PAYMENTS_REFUND):
        settlement_dialog(viewer, lease_id, _open(viewer))
    else:
        lease_dialog(viewer, lease_id)


def _reveal(
    viewer: Viewer, tenant_id: int, labels: dict[str, ui.label], fields: list[PiiField]
) -> None:
    """The fields this role may see in full, through the API's audited reveal."""
    body = tenant_routes.RevealIn(fields=fields, reason="console lease review")
    shown = viewer.send(tenant_routes.reveal, tenant_id=tenant_id, body=body)
    for field in fields:
        labels[viewer._(PII_LABELS[field])].text = shown.values.get(field) or ""
