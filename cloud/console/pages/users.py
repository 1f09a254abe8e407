"""Users and roles (admins only): the organisation's logins, creating a staff login, changing a
role and its property scopes, disabling and enabling, all through the API's user routes (their
checks, audit records and session revocation)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from cloud.api.paging import PageQuery
from cloud.api.routes import portfolio as portfolio_routes
from cloud.api.routes import users as user_routes
from cloud.console.layout import act, columns, enter, frame
from cloud.console.viewer import Viewer
from cloud.models import Role
from cloud.security.authz import Permission

PAGE_SIZE = 50
PROPERTY_CHOICES = 200
STAFF_ROLES = [r for r in Role if r is not Role.TENANT]  # tenant logins come with their lease


@ui.page("/users")
def users_page(request: Request, after: int = 0) -> RedirectResponse | None:
    viewer = enter(request, Permission.USERS_MANAGE)
    if not isinstance(viewer, Viewer):
        return viewer
    _ = viewer._
    with viewer.db() as session:
        page = viewer.call(
            user_routes.list_users,
            me=viewer.me,
            session=session,
            page=PageQuery(after=after if 0 < after < 2**31 else None, limit=PAGE_SIZE),
        )
        properties = {
            p.id: p.name
            for p in viewer.call(
                portfolio_routes.list_properties,
                me=viewer.me,
                session=session,
                page=PageQuery(limit=PROPERTY_CHOICES),
            ).items
        }
    users = {u.id: u for u in page.items}
    with frame(viewer, _("Users & roles")):
        ui.button(_("New user"), on_click=lambda: _create(viewer, properties)).props(
            "data-testid=new-user"
        )
        table = (
            ui.table(
                columns=columns(
                    ("username", _("User")),
                    ("display_name", _("Name")),
                    ("role", _("Role")),
                    ("properties", _("Properties")),
                    ("active", _("State")),
                ),
                rows=[
                    {
                        "id": u.id,
                        "username": u.username,
                        "display_name": u.display_name,
                        "role": _(u.role.value),
                        "properties": ", ".join(properties.get(p, str(p)) for p in u.property_ids),
                        "active": _("active") if u.active else _("disabled"),
                    }
                    for u in page.items
                ],
                row_key="id",
            )
            .props("dense flat data-testid=users")
            .classes("w-full cursor-pointer")
        )
        table.on(
            "rowClick",
            lambda e: _edit(viewer, users[int(e.args[1]["id"])], properties),
        )
        if page.next_after is not None:
            ui.link(_("Next page"), f"/users?after={page.next_after}")
    return None


def _role_fields(
    viewer: Viewer, properties: dict[int, str], role: Role, scoped: list[int]
) -> tuple[ui.select, ui.select]:
    _ = viewer._
    pick_role = ui.select(
        {r.value: _(r.value) for r in STAFF_ROLES}, value=role.value, label=_("Role")
    ).props("data-testid=role")
    pick_props = ui.select(properties, value=scoped, multiple=True, label=_("Properties")).props(
        "use-chips data-testid=properties"
    )
    return pick_role, pick_props


def _done(viewer: Viewer, action: Callable[[], object]) -> None:
    if act(viewer, action) is not None:
        ui.navigate.reload()


def _create(viewer: Viewer, properties: dict[int, str]) -> None:
    _ = viewer._
    with ui.dialog(value=True) as dialog, ui.card().classes("w-96"):
        ui.label(_("New user")).classes("text-h6")
        username = ui.input(_("User")).props("maxlength=64 data-testid=username")
        name = ui.input(_("Name")).props("maxlength=100 data-testid=display-name")
        password = ui.input(_("Password"), password=True).props(
            "maxlength=1024 data-testid=password"
        )
        role, scoped = _role_fields(viewer, properties, Role.FRONT_DESK, [])

        def create() -> object:
            body = user_routes.UserIn(
                username=username.value or "",
                password=password.value or "",
                display_name=name.value or "",
                role=Role(role.value),
                property_ids=list(scoped.value or []),
            )
            return viewer.send(user_routes.create_user, body=body)

        with ui.row():
            ui.button(_("Create"), on_click=lambda: _done(viewer, create)).props(
                "color=primary data-testid=create"
            )
            ui.button(_("Cancel"), on_click=dialog.close).props("flat")


def _edit(viewer: Viewer, user: user_routes.UserOut, properties: dict[int, str]) -> None:
    _ = viewer._
    with ui.dialog(value=True) as dialog, ui.card().classes("w-96"):
        ui.label(user.username).classes("text-h6")
        role, scoped = _role_fields(viewer, properties, user.role, user.property_ids)

        def save() -> object:
            body = user_routes.RoleIn(role=Role(role.value), property_ids=list(scoped.value or []))
            return viewer.send(user_routes.set_role, user_id=user.id, body=body)

        def switch() -> object:
            route = user_routes.deactivate_user if user.active else user_routes.activate_user
            return viewer.send(route, user_id=user.id)

        with ui.row():
            ui.button(_("Save"), on_click=lambda: _done(viewer, save)).props(
                "color=primary data-testid=save"
            )
            ui.button(
                _("Disable") if user.active else _("Enable"),
                on_click=lambda: _done(viewer, switch),
            ).props("color=negative data-testid=switch")
            ui.button(_("Cancel"), on_click=dialog.close).props("flat")
