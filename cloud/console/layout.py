"""The shared frame of every console page (header, menu by role, language, sign-out), and the
entry check each page makes before it draws anything."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui
from pydantic import ValidationError
from sqlalchemy import select

from cloud.api.problems import ProblemError
from cloud.console.i18n import LOCALES, N_, Texts, pick
from cloud.console.mount import parent_app
from cloud.console.viewer import SignedOutError, Viewer, viewer_of
from cloud.importer.csvfile import yuan_to_fen
from cloud.models import Property, Unit, User
from cloud.security.authz import Permission
from protocols.errors import AnjuError
from protocols.text import text_fault

P = Permission


@dataclass(frozen=True)
class MenuItem:
    path: str
    label: str  # an English msgid
    permission: Permission
    icon: str


MENU = (
    MenuItem("/board", N_("Room board"), P.PORTFOLIO_READ, "grid_view"),
    MenuItem("/leases", N_("Tenants & leases"), P.LEASES_READ, "description"),
    MenuItem("/billing", N_("Billing"), P.REPORTS_READ, "payments"),
    MenuItem("/meters", N_("Meters"), P.METERS_READ, "speed"),
    MenuItem("/gateways", N_("Gateways"), P.METERS_READ, "router"),
    MenuItem("/doors", N_("Doors"), P.DOORS_READ, "door_front"),
    MenuItem("/work-orders", N_("Work orders"), P.WORK_ORDERS_READ, "build"),
    MenuItem("/parts", N_("Spare parts"), P.PARTS_READ, "inventory_2"),
    MenuItem("/audit", N_("Audit log"), P.AUDIT_READ, "policy"),
    MenuItem("/users", N_("Users & roles"), P.USERS_MANAGE, "manage_accounts"),
    MenuItem("/import", N_("Import"), P.DATA_IMPORT, "upload_file"),
)
# Enum values shown through the catalog (named here so extraction finds them).
ENUM_LABELS = (
    N_("admin"), N_("manager"), N_("front_desk"), N_("finance"), N_("maintenance"),
    N_("installer"), N_("tenant"), N_("draft"), N_("signed"), N_("active"), N_("ended"),
    N_("terminated"), N_("electricity"), N_("water"), N_("hot_water"), N_("gas"), N_("open"),
    N_("paid"), N_("void"),
)  # fmt: skip
STATE_COLOURS = {
    "vacant": "#9e9e9e",
    "reserved": "#7e57c2",
    "signing": "#29b6f6",
    "to_move_in": "#26a69a",
    "occupied": "#43a047",
    "arrears": "#e53935",
    "expiring_30": "#fb8c00",
    "expiring_60": "#fdd835",
    "overstaying": "#6d4c41",
    "maintenance": "#546e7a",
}


def enter(request: Request, permission: Permission) -> Viewer | RedirectResponse | None:
    """The page's Viewer; a redirect to sign-in without a session; None when the page drew a
    refusal (a tenant, or a role without the page's permission)."""
    viewer = viewer_of(request, parent_app())
    if viewer is None:
        return RedirectResponse("/", status_code=303)
    if viewer.me.is_tenant:
        refusal(
            viewer.texts,
            viewer.texts.gettext("The console is for staff; tenants use the tenant portal."),
        )
        return None
    if not viewer.can(permission):
        with frame(viewer, viewer._("Not allowed")):
            ui.label(viewer._("Your role may not open this page.")).classes("text-lg").props(
                "data-testid=refused"
            )
        return None
    return viewer


def refusal(texts: Texts, message: str) -> None:
    with ui.column().classes("absolute-center items-center"):
        ui.label(message).classes("text-lg").props("data-testid=refused")
        ui.button(texts.gettext("Sign out"), on_click=_sign_out).props("flat")


def _sign_out() -> None:
    ui.run_javascript(
        "fetch('/api/v1/auth/logout', {method: 'POST', credentials: 'same-origin'})"
        ".finally(() => { window.location.href = '/'; })"
    )


@contextmanager
def frame(viewer: Viewer, title: str) -> Iterator[None]:
    _ = viewer._
    ui.page_title(f"{title} · 安居 Anju")
    with ui.header().classes("items-center bg-teal-8 q-px-md"):
        ui.label("安居 Anju").classes("text-h6 text-weight-bold")
        for item in MENU:
            if viewer.can(item.permission):
                ui.link(_(item.label), item.path).classes("text-white no-underline q-mx-sm").props(
                    f"data-testid=menu-{item.path.strip('/')}"
                )
        ui.space()
        ui.label(f"{viewer.me.username} · {_(viewer.me.role.value)}").classes("q-mr-md")
        ui.select(
            LOCALES,
            value=viewer.texts.locale,
            on_change=lambda e: act(viewer, lambda: _set_locale(viewer, e.value)),
        ).props("dense dark borderless options-dense").props("data-testid=language")
        ui.button(_("Sign out"), on_click=_sign_out).props("flat color=white").props(
            "data-testid=sign-out"
        )
    with ui.column().classes("w-full q-pa-md"):
        ui.label(title).classes("text-h5")
        yield


def _set_locale(viewer: Viewer, locale: str) -> None:
    with viewer.db() as session:
        session.get_one(User, viewer.me.user_id).locale = pick(locale)
        session.commit()
    ui.navigate.reload()


def act(viewer: Viewer, action: Callable[[], Any]) -> Any:
    """Run a page action: a dead session goes back to sign-in; a refused or impossible action
    (the API's own errors, invalid input) is shown, not raised."""
    try:
        return action()
    except (SignedOutError, ProblemError, AnjuError, ValidationError) as exc:
        _show(viewer, exc)
    return None


async def act_slowly(viewer: Viewer, action: Callable[[], Any]) -> Any:
    """`act` for a long action: it runs in a worker thread while the page stays live."""
    try:
        return await run.io_bound(action)
    except (SignedOutError, ProblemError, AnjuError, ValidationError) as exc:
        _show(viewer, exc)
    return None


def _show(viewer: Viewer, exc: Exception) -> None:
    if isinstance(exc, SignedOutError):
        ui.navigate.to("/")
    elif isinstance(exc, ProblemError):
        ui.notify(exc.detail, type="negative")
    elif isinstance(exc, ValidationError):
        first = exc.errors()[0]
        field = ".".join(str(x) for x in first["loc"])
        invalid = viewer._("Invalid input")
        ui.notify(f"{invalid}: {field}: {first['msg']}", type="negative")
    else:
        ui.notify(str(exc), type="negative")


def columns(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    """Table columns from (field, label) pairs."""
    return [{"name": c, "label": label, "field": c, "align": "left"} for c, label in pairs]


def choice(
    options: dict[Any, str], value: Any, label: str, url_of: Callable[[Any], str], testid: str
) -> ui.select:
    """A filter: choosing an option loads the page's URL for it (the server filters)."""
    return ui.select(
        options, value=value, label=label, on_change=lambda e: ui.navigate.to(url_of(e.value))
    ).props(f"data-testid={testid}")


def my_properties(viewer: Viewer) -> dict[int, str]:
    """The properties in the viewer's scope, by id (a page's property choice)."""
    with viewer.db() as session:
        rows = session.execute(
            select(Property.id, Property.name)
            .where(Property.id.in_(viewer.me.property_ids))
            .order_by(Property.id)
        ).all()
    return {r.id: r.name for r in rows}


def unit_in(viewer: Viewer, property_id: object, code: str | None) -> int | None:
    """The id of the unit with this code in one of the viewer's properties; None (and a
    notice) for no such unit, another scope's, or a code no unit can have (NUL, a lone
    surrogate: text the API's checks would refuse before any query)."""
    code = (code or "").strip()
    scope = viewer.me.property_ids
    if not isinstance(property_id, int) or property_id not in scope or text_fault(code):
        unit_id = None
    else:
        with viewer.db() as session:
            unit_id = session.scalar(
                select(Unit.id).where(Unit.property_id == property_id, Unit.code == code)
            )
    if unit_id is None:
        ui.notify(viewer._("No such unit in this property"), type="negative")
    return unit_id


def yuan(viewer: Viewer, text: str | None) -> int | None:
    """Fen from an amount typed in yuan ("1,500.50"), by the importer's rule; None (and a
    notice) for what is not one."""
    try:
        return yuan_to_fen(text or "")
    except ValueError:
        ui.notify(viewer._("Enter an amount such as 1500.00"), type="negative")
        return None


def a_day(viewer: Viewer, text: str | None, example: date) -> date | None:
    """The date typed (ISO, as a date input sends it); None (and a notice) for what is not."""
    try:
        return date.fromisoformat(text or "")
    except ValueError:
        ui.notify(viewer._("Enter a date such as {day}").format(day=example), type="negative")
        return None
