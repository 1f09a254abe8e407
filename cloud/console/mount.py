"""Mount the console on the cloud app: NiceGUI's pages at `/`, and the console's sign-in,
which runs the API's own password check and throttles and issues the same session cookie."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from nicegui import app as nicegui_app
from nicegui import ui
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import NowDep, SessionDep, client_ip
from cloud.api.problems import ProblemError
from cloud.api.routes.auth import audit_login, set_session_cookie, sign_in
from cloud.models import Role
from cloud.security import tokens

router = APIRouter(include_in_schema=False)
# A cross-site page cannot post here: SameSite=Strict keeps the cookie home, a JSON body needs
# a CORS preflight nobody answers, and browsers that say where a request came from are checked.
SAME_SITE = frozenset({"same-origin", "none"})


class ConsoleLoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


@router.post("/console/login", status_code=204, responses={401: {}, 403: {}, 429: {}})
def console_login(
    body: ConsoleLoginIn, request: Request, response: Response, session: SessionDep, now: NowDep
) -> None:
    """Staff only: a tenant's right password is refused here (they use the tenant portal)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in SAME_SITE:
        raise ProblemError(403, "sign in from the console's own page")
    user = sign_in(session, request, now, body.username, body.password)
    ip = client_ip(request)
    if user.role is Role.TENANT:
        audit_login(session, now, user.username, ip, user, "console.login", "refused")
        session.commit()
        raise ProblemError(403, "tenants sign in to the tenant portal, not the console")
    token, expires = tokens.issue(session, user.id, "session", now)
    audit_login(session, now, user.username, ip, user, "console.login", "ok")
    session.commit()
    set_session_cookie(request, response, token, expires, now)


_mounted: list[FastAPI] = []


def parent_app() -> FastAPI:
    return _mounted[0]


def mount_console(app: FastAPI) -> None:
    """NiceGUI is one per process: the console mounts on the first app that asks."""
    if _mounted:
        raise RuntimeError("the console is already mounted on another app in this process")
    from cloud.console.pages import register  # noqa: PLC0415 - NiceGUI pages register on import

    _mounted.append(app)
    # Pages see NiceGUI's sub-app as request.app; the client address needs the proxies.
    nicegui_app.state.proxies = app.state.proxies
    app.include_router(router)
    register()
    ui.run_with(
        app,
        title="安居 Anju",
        favicon="🏠",
        show_welcome_message=False,
        reconnect_timeout=10.0,
    )
