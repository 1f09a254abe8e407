"""Who is looking at a console page: the API's session cookie turned into the same Principal
the routes get, re-checked before every action so a revoked or expired session stops at once."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from cloud.api.deps import SESSION_COOKIE, Guard, client_ip, guard_of, load_principal
from cloud.api.problems import ProblemError
from cloud.api.text import json_fault
from cloud.console.i18n import Texts, pick
from cloud.security import tokens
from cloud.security.authz import Permission, Principal
from cloud.security.crypto import FieldKeys

T = TypeVar("T")


class SignedOutError(Exception):
    """The session ended (logout, revoked, expired) while the page was open."""


@dataclass(frozen=True)
class Viewer:
    me: Principal
    token: str
    texts: Texts
    app: FastAPI

    @property
    def keys(self) -> FieldKeys:
        keys: FieldKeys = self.app.state.keys
        return keys

    def now(self) -> datetime:
        clock: Callable[[], datetime] = self.app.state.clock
        return clock()

    def today(self) -> date:
        return self.now().astimezone(self.texts.tz).date()

    def can(self, permission: Permission) -> bool:
        return self.me.can(permission)

    def _(self, message: str) -> str:
        return self.texts.gettext(message)

    def call(self, endpoint: Callable[..., T], /, **kwargs: Any) -> T:
        """An API route's function run for this user: the route's own Guard permission is
        checked here (the Guard itself reads a request), then the route does the rest (scope,
        service call, audit, commit). `request`, where the route takes one, is this app's."""
        permission = route_guard(endpoint).permission
        if not self.me.can(permission):
            raise ProblemError(403, f"role {self.me.role} may not {permission}")
        # The API checks every string on the wire before a route runs; a page's values never
        # cross it, so they are checked here (form models as the dicts they dump to).
        values = {k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in kwargs.items()}
        found = json_fault(values)
        if found is not None:
            raise ProblemError(422, f"a field {found[1]}")
        if "request" in endpoint.__annotations__:
            kwargs["request"] = Request({"type": "http", "app": self.app, "headers": []})
        return endpoint(**kwargs)

    def send(self, endpoint: Callable[..., T], /, **kwargs: Any) -> T:
        """`call` in a session of its own, with the viewer, the clock and the keys passed
        where the route takes them (a page action that writes)."""
        wants = endpoint.__annotations__
        extra = {"now": self.now(), "keys": self.keys}
        kwargs |= {k: v for k, v in extra.items() if k in wants}
        with self.db() as session:
            return self.call(endpoint, me=self.me, session=session, **kwargs)

    @contextmanager
    def db(self) -> Iterator[Session]:
        """A database session for one action, after checking the login still stands."""
        sessions: sessionmaker[Session] = self.app.state.sessions
        with sessions() as session:
            user = tokens.lookup(session, self.token, self.now())
            if user is None or user.id != self.me.user_id:
                raise SignedOutError
            yield session


def viewer_of(request: Request, app: FastAPI) -> Viewer | None:
    """The staff member a page request's session cookie belongs to; None for no (or a dead)
    session. A tenant gets a Viewer too: pages refuse them by permission."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    clock: Callable[[], datetime] = app.state.clock
    sessions: sessionmaker[Session] = app.state.sessions
    with sessions() as session:
        user = tokens.lookup(session, token, clock())
        if user is None:
            return None
        me = load_principal(session, user, client_ip(request))
        locale = pick(user.locale)
    texts = Texts(locale=locale, tz=ZoneInfo(app.state.settings.timezone))
    return Viewer(me=me, token=token, texts=texts, app=app)


def route_guard(endpoint: Callable[..., Any]) -> Guard:
    """The Guard an API route declares (on the router of the route's own module)."""
    router = getattr(sys.modules[endpoint.__module__], "router", None)
    for route in getattr(router, "routes", ()):
        if isinstance(route, APIRoute) and route.endpoint is endpoint:
            found = guard_of([d.call for d in route.dependant.dependencies])
            if found is not None:
                return found
    raise LookupError(f"{endpoint.__name__} is not a guarded API route")
