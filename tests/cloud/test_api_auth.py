"""Login, sessions, bearer tokens, throttling and lock-out, against the real app and database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select

from anju.commands.cloud import uvicorn_options
from cloud.api.deps import SESSION_COOKIE
from cloud.app import create_app
from cloud.config import Settings
from cloud.models import AuditEvent, LoginAttempt, Role
from cloud.security.crypto import FieldKeys
from tests.cloud.conftest import Api, serve
from tests.cloud.world import PASSWORD

Client = Api | httpx.AsyncClient


async def login(api: Client, username: str, password: str = PASSWORD, kind: str = "bearer") -> int:
    client = api.client if isinstance(api, Api) else api
    r = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password, "kind": kind}
    )
    return r.status_code


@pytest.fixture
async def twin(api: Api, keys: FieldKeys) -> AsyncIterator[httpx.AsyncClient]:
    """A second API instance on the same database, as a second process would be; requests come
    from the same address as `api`'s."""
    settings = Settings(env="development", ingest_in_process=False)
    app = create_app(settings, sessions=api.sessions, keys=keys, clock=api.clock)
    async with serve(app, port=4001) as client:
        yield client


def audit_outcomes(api: Api, username: str) -> list[tuple[str, str]]:
    with api.sessions() as s:
        rows = s.execute(
            select(AuditEvent.action, AuditEvent.outcome)
            .where(AuditEvent.username == username)
            .order_by(AuditEvent.id)
        )
        return [(a, o) for a, o in rows]


async def test_bearer_login_and_me(api: Api) -> None:
    r = await api.client.post(
        "/api/v1/auth/login", json={"username": "user-finance", "password": PASSWORD}
    )
    assert r.status_code == 200
    token = r.json()["token"]
    me = await api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "finance"
    assert me.json()["property_ids"] == [api.world.sites["P1"].property_id]
    assert "tenants.reveal" in me.json()["permissions"]


async def test_session_cookie_then_logout_revokes(api: Api) -> None:
    r = await api.client.post(
        "/api/v1/auth/login",
        json={"username": "user-manager", "password": PASSWORD, "kind": "session"},
    )
    assert r.status_code == 200
    assert r.json()["token"] is None
    set_cookie = r.headers["set-cookie"].lower()
    assert "httponly" in set_cookie
    assert "samesite=strict" in set_cookie
    token = r.cookies[SESSION_COOKIE]
    assert (await api.client.get("/api/v1/auth/me")).status_code == 200  # the jar sends it
    assert (await api.client.post("/api/v1/auth/logout")).status_code == 204
    api.client.cookies.set(SESSION_COOKIE, token)  # replay the revoked cookie
    r = await api.client.get("/api/v1/auth/me")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"


async def test_token_expires(api: Api) -> None:
    headers = api.as_role(Role.MANAGER)
    assert (await api.client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    api.clock.now += timedelta(days=31)
    assert (await api.client.get("/api/v1/auth/me", headers=headers)).status_code == 401


async def test_lockout_after_repeated_failures(api: Api) -> None:
    for _ in range(5):
        assert await login(api, "user-front_desk", "wrong password!") == 401
    # Locked: even the right password is refused until the lock expires.
    assert await login(api, "user-front_desk") == 403
    api.clock.now += timedelta(minutes=16)
    assert await login(api, "user-front_desk") == 200
    with api.sessions() as s:
        actions = s.execute(
            select(AuditEvent.action, AuditEvent.outcome, AuditEvent.ip).where(
                AuditEvent.username == "user-front_desk"
            )
        ).all()
    assert ("auth.lockout", "ok", "198.51.100.7") in actions
    assert ("auth.login", "locked", "198.51.100.7") in actions
    assert sum(1 for a in actions if a[1] == "failed") == 5


async def test_login_rate_limited_per_address(api: Api) -> None:
    codes = [await login(api, f"nobody-{i}", "x") for i in range(11)]
    assert codes[:10] == [401] * 10
    assert codes[10] == 429
    api.clock.now += timedelta(minutes=1, seconds=1)
    assert await login(api, "user-admin") == 200


async def test_unknown_user_and_wrong_password_look_the_same(api: Api) -> None:
    a = await api.client.post("/api/v1/auth/login", json={"username": "ghost", "password": "x"})
    b = await api.client.post(
        "/api/v1/auth/login", json={"username": "user-admin", "password": "x"}
    )
    assert a.status_code == b.status_code == 401
    assert a.json()["detail"] == b.json()["detail"]


async def test_lockout_holds_across_two_instances(api: Api, twin: httpx.AsyncClient) -> None:
    for i in range(5):
        assert await login(api if i % 2 else twin, "user-manager", "wrong password!") == 401
    assert await login(twin, "user-manager") == 403
    assert await login(api, "user-manager") == 403
    api.clock.now += timedelta(minutes=16)
    assert await login(twin, "user-manager") == 200
    outcomes = audit_outcomes(api, "user-manager")
    assert outcomes.count(("auth.login", "failed")) == 5
    assert outcomes.count(("auth.lockout", "ok")) == 1
    assert outcomes.count(("auth.login", "locked")) == 2


async def test_address_limit_is_shared_by_two_instances(api: Api, twin: httpx.AsyncClient) -> None:
    codes = [await login(api if i % 2 else twin, f"nobody-{i}", "x") for i in range(10)]
    assert codes == [401] * 10
    r = await api.client.post("/api/v1/auth/login", json={"username": "a", "password": "x"})
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert await login(twin, "user-admin") == 429
    api.clock.now += timedelta(minutes=1, seconds=1)
    assert await login(twin, "user-admin") == 200
    with api.sessions() as s:  # attempts that left the window are forgotten
        assert s.scalar(select(func.count()).select_from(LoginAttempt)) == 1


async def test_a_burst_of_guesses_gets_at_most_five_password_checks(
    api: Api, twin: httpx.AsyncClient
) -> None:
    """Concurrent wrong guesses on two instances: the try count is taken in the database before
    the password check, so no more than five passwords are ever checked."""
    clients = [api.client, twin] * 4
    codes = await asyncio.gather(*(login(c, "user-finance", "wrong password!") for c in clients))
    assert sorted(set(codes)) <= [401, 403]
    assert 1 <= codes.count(401) <= 5
    outcomes = audit_outcomes(api, "user-finance")
    assert outcomes.count(("auth.login", "failed")) == codes.count(401)
    assert ("auth.lockout", "ok") in outcomes
    assert await login(twin, "user-finance") == 403  # locked, even with the right password


def app_on(api: Api, keys: FieldKeys, trusted_proxies: str = "") -> FastAPI:
    """Another app on `api`'s database and clock, with its own proxy setting."""
    settings = Settings(env="development", ingest_in_process=False, trusted_proxies=trusted_proxies)
    return create_app(settings, sessions=api.sessions, keys=keys, clock=api.clock)


@asynccontextmanager
async def from_loopback(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Requests from 127.0.0.1 (a local proxy, or anyone on the host) through uvicorn as
    `anju cloud serve` configures it."""
    config = uvicorn.Config(app, **uvicorn_options("127.0.0.1", 8000), log_config=None)
    config.load()
    async with serve(app, 4002, host="127.0.0.1", asgi=config.loaded_app) as client:
        yield client


def audited_ips(api: Api, username_like: str) -> set[str]:
    with api.sessions() as s:
        return set(s.scalars(select(AuditEvent.ip).where(AuditEvent.username.like(username_like))))


async def test_rotating_forwarded_for_from_loopback_gains_nothing(
    api: Api, keys: FieldKeys
) -> None:
    """No proxy named: a new X-Forwarded-For per guess neither escapes the address limit nor
    lands in the audit log."""
    async with from_loopback(app_on(api, keys)) as client:
        codes = [
            (
                await client.post(
                    "/api/v1/auth/login",
                    json={"username": f"nobody-{i}", "password": "x"},
                    headers={"X-Forwarded-For": f"203.0.113.{i}"},
                )
            ).status_code
            for i in range(11)
        ]
    assert codes == [401] * 10 + [429]
    assert audited_ips(api, "nobody-%") == {"127.0.0.1"}


async def test_a_named_proxy_forwards_the_client_address(api: Api, keys: FieldKeys) -> None:
    """nginx on the host appends the address it saw; what the client wrote before it is ignored,
    so rotating it does not escape the limit, and the audit log names the real client."""
    async with from_loopback(app_on(api, keys, "127.0.0.1")) as client:
        codes = []
        for i in range(11):
            r = await client.post(
                "/api/v1/auth/login",
                json={"username": f"nobody-{i}", "password": "x"},
                headers={"X-Forwarded-For": f"6.6.6.{i}, 203.0.113.9"},
            )
            codes.append(r.status_code)
        assert codes == [401] * 10 + [429]
        assert audited_ips(api, "nobody-%") == {"203.0.113.9"}
        other = {"X-Forwarded-For": "203.0.113.10"}  # another client behind the same proxy
        r = await client.post(
            "/api/v1/auth/login",
            json={"username": "user-admin", "password": PASSWORD},
            headers=other,
        )
        assert r.status_code == 200
        r = await client.get("/api/v1/users", headers={**api.as_role(Role.MANAGER), **other})
        assert r.status_code == 403
    assert audited_ips(api, "user-manager") == {"203.0.113.10"}  # the audited denial
