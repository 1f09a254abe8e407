"""The lease forms: a new tenant, a new draft lease, a renewal, and the move-out deposit
settlement. Each posts the API route's own body model to the route function (Viewer.call), so
the bounds, scope checks, encryption of personal numbers and audit records are the API's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta

from nicegui import ui

from cloud.api.paging import PageQuery
from cloud.api.routes import billing as billing_routes
from cloud.api.routes import leases as lease_routes
from cloud.api.routes import tenants as tenant_routes
from cloud.billing.deposits import DeductionKind
from cloud.console.i18n import N_
from cloud.console.layout import a_day, act, my_properties, unit_in, yuan
from cloud.console.pages.billing import METHODS
from cloud.console.viewer import Viewer
from cloud.leases.lifecycle import add_months

ID_DOC_TYPES = {
    "cn_id": N_("Resident ID card"),
    "passport": N_("Passport"),
    "hk_mo_permit": N_("Hong Kong/Macao permit"),
    "tw_permit": N_("Taiwan permit"),
    "other": N_("Other document"),
}
DEDUCTION_LABELS = {
    DeductionKind.UTILITIES: N_("Final utilities"),
    DeductionKind.DAMAGE: N_("Damage"),
    DeductionKind.UNPAID_FEES: N_("Unpaid fees"),
    DeductionKind.OTHER: N_("Other"),
}
CYCLES = (1, 2, 3, 6, 12)
TENANT_MATCHES = 20
MAX_DEDUCTIONS = 10

OpenLease = Callable[[int], None]


def buttons(
    viewer: Viewer, dialog: ui.dialog, label: str, save: Callable[[], None], testid: str
) -> None:
    """A form's save (run as a page action) and cancel."""
    with ui.row():
        ui.button(label, on_click=lambda: act(viewer, save)).props(
            f"unelevated color=teal data-testid={testid}"
        )
        ui.button(viewer._("Cancel"), on_click=dialog.close).props("flat")


def new_tenant_dialog(viewer: Viewer, then: Callable[[int, int], None]) -> None:
    """`then(tenant_id, property_id)` runs after the tenant is saved (it offers the lease)."""
    _ = viewer._
    properties = my_properties(viewer)
    with ui.dialog(value=True) as dialog, ui.card().classes("w-[28rem]"):
        ui.label(_("New tenant")).classes("text-h6")
        prop = ui.select(properties, value=next(iter(properties), None), label=_("Property")).props(
            "data-testid=tenant-property"
        )
        name = ui.input(_("Name")).props("maxlength=100 data-testid=tenant-name")
        doc = ui.select(
            {k: _(v) for k, v in ID_DOC_TYPES.items()}, value="cn_id", label=_("ID document")
        )
        number = ui.input(_("ID number")).props("maxlength=40 data-testid=tenant-id-number")
        phone = ui.input(_("Phone")).props("maxlength=40 data-testid=tenant-phone")
        email = ui.input(_("E-mail")).props("maxlength=254")

        def save() -> None:
            body = tenant_routes.TenantIn(
                property_id=int(prop.value or 0),
                name=name.value or "",
                id_doc_type=doc.value or "cn_id",
                id_number=number.value or "",
                phone=phone.value or None,
                email=email.value or None,
            )
            tenant = viewer.send(tenant_routes.create_tenant, body=body)
            dialog.close()
            ui.notify(_("Tenant saved: {id}").format(id=tenant.id_number), type="positive")
            then(tenant.id, tenant.property_id)

        buttons(viewer, dialog, _("Save"), save, "tenant-save")


def new_lease_dialog(
    viewer: Viewer, opened: OpenLease, tenant_id: int | None = None, property_id: int = 0
) -> None:
    """A draft lease: a unit by its code, a tenant found by name (or the one just saved)."""
    _ = viewer._
    properties = my_properties(viewer)
    start = viewer.today()
    with ui.dialog(value=True) as dialog, ui.card().classes("w-[32rem]"):
        ui.label(_("New lease")).classes("text-h6")
        prop = ui.select(
            properties,
            label=_("Property"),
            value=property_id if property_id in properties else next(iter(properties), None),
        ).props("data-testid=lease-property")
        unit_code = ui.input(_("Unit code")).props("maxlength=32 data-testid=lease-unit")
        tenant = ui.select({}, value=None, label=_("Tenant")).props("data-testid=lease-tenant")
        if tenant_id is None:
            tenant_finder(viewer, prop, tenant, _("Find a tenant by name"), "lease-tenant")
        else:
            known = viewer.send(tenant_routes.get_tenant, tenant_id=tenant_id)
            tenant.set_options({known.id: f"{known.name} · {known.id_number}"}, value=known.id)
        co_tenants = ui.select({}, value=[], multiple=True, label=_("Co-tenants")).props(
            "use-chips data-testid=lease-co-tenants"
        )
        tenant_finder(viewer, prop, co_tenants, _("Find a co-tenant by name"), "lease-co-tenants")
        with ui.row().classes("w-full no-wrap"):
            first = ui.input(_("Start"), value=start.isoformat()).props("type=date")
            months = ui.number(_("Months"), value=12, min=1, max=120, precision=0)
        with ui.row().classes("w-full no-wrap"):
            rent = ui.input(_("Monthly rent (¥)")).props("data-testid=lease-rent")
            deposit = ui.input(_("Deposit (¥)")).props("data-testid=lease-deposit")
        cycle = ui.select(
            {c: _("every {n} months").format(n=c) for c in CYCLES},
            value=1,
            label=_("Payment cycle"),
        )

        def save() -> None:
            rent_fen, deposit_fen = yuan(viewer, rent.value), yuan(viewer, deposit.value)
            if rent_fen is None or deposit_fen is None:
                return
            begin = a_day(viewer, first.value, start)
            if begin is None:
                return
            unit_id = unit_in(viewer, prop.value, unit_code.value)
            if unit_id is None:
                return
            with viewer.db() as session:
                body = lease_routes.LeaseIn(
                    unit_id=unit_id,
                    primary_tenant_id=int(tenant.value or 0),
                    co_tenant_ids=[int(x) for x in co_tenants.value or [] if x != tenant.value],
                    start_date=begin,
                    end_date=add_months(begin, int(months.value or 12)) - timedelta(days=1),
                    rent_fen=rent_fen,
                    deposit_fen=deposit_fen,
                    payment_cycle_months=int(cycle.value or 1),
                )
                lease = viewer.call(
                    lease_routes.create_lease,
                    body=body,
                    me=viewer.me,
                    session=session,
                    now=viewer.now(),
                )
            dialog.close()
            opened(lease.id)

        buttons(viewer, dialog, _("Create draft"), save, "lease-save")


def tenant_finder(
    viewer: Viewer, prop: ui.select, target: ui.select, label: str, testid: str
) -> None:
    """A name search for `target`'s options: the API's tenant list (its scope, its masking),
    the property's tenants whose name starts with what is typed; chosen ones stay chosen."""
    with ui.row().classes("w-full no-wrap items-center"):
        find = ui.input(label).props(f"maxlength=100 data-testid={testid}-find")

        def search() -> None:
            found = viewer.send(
                tenant_routes.list_tenants,
                page=PageQuery(after=None, limit=TENANT_MATCHES),
                property_id=prop.value,
                q=find.value or None,
                id_number=None,
                phone=None,
            )
            value = target.value
            chosen = set(value if isinstance(value, list) else [value])
            kept = {k: v for k, v in dict(target.options).items() if k in chosen}
            target.set_options(
                kept | {t.id: f"{t.name} · {t.id_number}" for t in found.items}, value=value
            )

        ui.button(viewer._("Find"), on_click=lambda: act(viewer, search)).props(
            f"flat data-testid={testid}-search"
        )


def renew_dialog(viewer: Viewer, lease_id: int, rent_fen: int, opened: OpenLease) -> None:
    _ = viewer._
    with ui.dialog(value=True) as dialog, ui.card():
        ui.label(_("Renew lease #{id}").format(id=lease_id)).classes("text-h6")
        months = ui.number(_("Months"), value=12, min=1, max=120, precision=0).props(
            "data-testid=renew-months"
        )
        rent = ui.input(_("Monthly rent (¥)"), value=f"{rent_fen / 100:.2f}").props(
            "data-testid=renew-rent"
        )

        def save() -> None:
            fen = yuan(viewer, rent.value)
            if fen is None:
                return
            body = lease_routes.RenewalIn(months=int(months.value or 0), rent_fen=fen)
            new = viewer.send(lease_routes.renew, lease_id=lease_id, body=body)
            dialog.close()
            opened(new.id)

        buttons(viewer, dialog, _("Renew"), save, "renew-save")


def settlement_dialog(viewer: Viewer, lease_id: int, opened: OpenLease) -> None:
    """Move-out: the deposit comes back less what the lease owes and what is itemised here."""
    _ = viewer._
    t = viewer.texts
    rows: list[tuple[ui.select, ui.input, ui.input]] = []
    with ui.dialog(value=True) as dialog, ui.card().classes("w-[36rem]"):
        ui.label(_("Move-out settlement of lease #{id}").format(id=lease_id)).classes("text-h6")
        ui.label(_("Open invoices are deducted from the deposit first."))
        listing = ui.column().classes("w-full")

        def add_row() -> None:
            if len(rows) >= MAX_DEDUCTIONS:
                return
            with listing, ui.row().classes("w-full no-wrap"):
                kinds = {k.value: _(v) for k, v in DEDUCTION_LABELS.items()}
                n = len(rows)
                rows.append(
                    (
                        ui.select(kinds, value=DeductionKind.DAMAGE.value, label=_("Deduction")),
                        ui.input(_("Amount (¥)")).props(f"data-testid=deduction-amount-{n}"),
                        ui.input(_("Reason")).props(
                            f"maxlength=300 data-testid=deduction-reason-{n}"
                        ),
                    )
                )

        result = ui.label().props("data-testid=settlement-result")

        def save() -> None:
            deductions = []
            for kind, amount, reason in rows:
                if not (amount.value or reason.value):
                    continue
                fen = yuan(viewer, amount.value)
                if fen is None:
                    return
                deductions.append(
                    billing_routes.DeductionIn(
                        kind=DeductionKind(kind.value), amount_fen=fen, reason=reason.value or ""
                    )
                )
            body = billing_routes.SettlementIn(deductions=deductions)
            out = viewer.send(billing_routes.settle_deposit, lease_id=lease_id, body=body)
            result.text = _("Deposit {deposit}: refund {refund}, final bill {bill}").format(
                deposit=t.money(out.deposit_fen),
                refund=t.money(out.refund_fen),
                bill=t.money(out.final_bill_fen),
            )
            save_button.disable()
            ui.notify(_("Deposit settled"), type="positive")

        with ui.row():
            ui.button(_("Add deduction"), on_click=add_row).props("flat data-testid=add-deduction")
            save_button = ui.button(_("Settle deposit"), on_click=lambda: act(viewer, save)).props(
                "unelevated color=negative data-testid=settle-save"
            )

            def close() -> None:
                dialog.close()
                opened(lease_id)

            ui.button(_("Close"), on_click=close).props("flat data-testid=settle-close")


def deposit_dialog(viewer: Viewer, lease: ui.dialog, lease_id: int, opened: OpenLease) -> None:
    """The deposit received: amount, method and the day it came in (the API's own route, which
    refuses more than the deposit left to receive)."""
    _ = viewer._
    today = viewer.today()
    with ui.dialog(value=True) as dialog, ui.card():
        ui.label(_("Deposit received for lease #{id}").format(id=lease_id)).classes("text-h6")
        amount = ui.input(_("Amount (¥)")).props("data-testid=deposit-amount")
        method = ui.select(
            {m: _(label) for m, label in METHODS.items()}, value="transfer", label=_("Method")
        ).props("data-testid=deposit-method")
        day = ui.input(_("Received on"), value=today.isoformat()).props(
            "type=date data-testid=deposit-day"
        )
        reference = ui.input(_("Reference")).props("maxlength=100")

        def save() -> None:
            fen = yuan(viewer, amount.value)
            if fen is None:
                return
            on = a_day(viewer, day.value, today)
            if on is None:
                return
            at = viewer.now() if on == today else datetime.combine(on, time(), viewer.texts.tz)
            body = billing_routes.DepositPaymentIn(
                amount_fen=fen,
                method=method.value or "transfer",
                reference=reference.value or "",
                received_at=at,
            )
            viewer.send(billing_routes.receive_deposit, lease_id=lease_id, body=body)
            dialog.close()
            lease.close()
            ui.notify(_("Deposit recorded"), type="positive")
            opened(lease_id)

        buttons(viewer, dialog, _("Record deposit"), save, "deposit-save")
