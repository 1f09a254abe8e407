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
from cloud.api.routes import auth as auth_routes
from cloud.app import create_app
from cloud.config import Settings
from cloud.models import AuditEvent, LoginAttempt, Role
from cloud.security import throttle
from cloud.security.crypto import FieldKeys
from cloud.security.passwords import verify_password
from tests.cloud.conftest import Api, serve
from tests.cloud.world import PASSWORD

Client = Api | httpx.AsyncClient


async def post_login(
    client: httpx.AsyncClient, username: str, password: str, kind: str = "bearer"
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password, "kind": kind}
    )


async def login(api: Client, username: str, password: str = PASSWORD, kind: str = "bearer") -> int:
    r = await post_login(api.client if isinstance(api, Api) else api, username, password, kind)
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


async def test_tries_from_one_address_wait_longer_and_longer(api: Api) -> None:
    for _ in range(5):
        assert await login(api, "user-front_desk", "wrong password!") == 401
    r = await post_login(api.client, "user-front_desk", PASSWORD)  # right, but too early
    assert (r.status_code, r.headers["retry-after"]) == (429, "30")
    api.clock.now += timedelta(seconds=30)
    assert await login(api, "user-front_desk", "wrong password!") == 401
    r = await post_login(api.client, "user-front_desk", "wrong password!")
    assert (r.status_code, r.headers["retry-after"]) == (429, "60")
    api.clock.now += timedelta(seconds=60)
    assert await login(api, "user-front_desk") == 200
    for _ in range(5):  # the success cleared the count
        assert await login(api, "user-front_desk", "wrong password!") == 401
    with api.sessions() as s:
        actions = s.execute(
            select(AuditEvent.action, AuditEvent.outcome, AuditEvent.ip).where(
                AuditEvent.username == "user-front_desk"
            )
        ).all()
    assert actions.count(("auth.login", "throttled", "198.51.100.7")) == 2
    assert actions.count(("auth.login", "failed", "198.51.100.7")) == 11


def test_the_delay_grows_to_its_cap() -> None:
    delays = [throttle.delay_after(k).total_seconds() for k in range(1, 13)]
    assert delays == [0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900, 900]


async def test_a_failing_address_does_not_lock_the_user_out_elsewhere(
    api: Api, keys: FieldKeys
) -> None:
    """Whoever knows a username fails from 198.51.100.7 as long as they like; the user, at
    home at 203.0.113.50, signs in."""
    for _ in range(8):
        assert await login(api, "user-front_desk", "wrong password!") != 200
    async with serve(app_on(api, keys), 4003, host="203.0.113.50") as home:
        assert await login(home, "user-front_desk") == 200
    assert await login(api, "user-front_desk") == 429  # the attacker's address still waits


async def test_known_and_unknown_usernames_answer_alike_after_failures(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same statuses, bodies and Retry-After, and the same password checks (an unknown name is
    checked against a dummy argon2id hash), try after try."""
    checks: list[bool] = []

    def counting(stored: str | None, password: str) -> bool:
        checks.append(stored is None)
        return verify_password(stored, password)

    monkeypatch.setattr(auth_routes, "verify_password", counting)
    answers = {}
    for name in ("user-maintenance", "ghost-user"):
        answers[name] = []
        for _ in range(7):
            r = await post_login(api.client, name, "wrong password!")
            answers[name].append((r.status_code, r.json(), r.headers.get("retry-after")))
        api.clock.now += timedelta(minutes=1, seconds=1)  # out of the address's window
    assert answers["user-maintenance"] == answers["ghost-user"]
    assert [a[0] for a in answers["ghost-user"]] == [401] * 5 + [429] * 2
    assert checks == [False] * 5 + [True] * 5


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


async def test_throttle_holds_across_two_instances(api: Api, twin: httpx.AsyncClient) -> None:
    for i in range(5):
        assert await login(api if i % 2 else twin, "user-manager", "wrong password!") == 401
    assert await login(twin, "user-manager") == 429
    assert await login(api, "user-manager") == 429
    api.clock.now += timedelta(seconds=30)
    assert await login(twin, "user-manager") == 200
    outcomes = audit_outcomes(api, "user-manager")
    assert outcomes.count(("auth.login", "failed")) == 5
    assert outcomes.count(("auth.login", "throttled")) == 2


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
    """Concurrent wrong guesses on two instances: the try is counted, and the next one's time
    set, in the database before the password check, so no more than five are checked."""
    clients = [api.client, twin] * 4
    codes = await asyncio.gather(*(login(c, "user-finance", "wrong password!") for c in clients))
    assert sorted(set(codes)) == [401, 429]
    assert codes.count(401) == 5
    outcomes = audit_outcomes(api, "user-finance")
    assert outcomes.count(("auth.login", "failed")) == 5
    assert outcomes.count(("auth.login", "throttled")) == 3
    assert await login(twin, "user-finance") == 429  # waits, even with the right password


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


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def signed_in(api: Api, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = await post_login(api.client, username, password)
    assert r.status_code == 200, r.text
    return bearer(r.json()["token"])


def audit_events(api: Api, action: str) -> list[tuple[str, str, str, str]]:
    with api.sessions() as s:
        rows = s.execute(
            select(AuditEvent.username, AuditEvent.target_id, AuditEvent.outcome, AuditEvent.detail)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
        return [(u, t, o, d) for u, t, o, d in rows]


async def me_status(api: Api, headers: dict[str, str]) -> int:
    return (await api.client.get("/api/v1/auth/me", headers=headers)).status_code


async def test_change_own_password(api: Api) -> None:
    """The old password is required; the caller's other sessions end; audited."""
    here, elsewhere = await signed_in(api, "user-finance"), await signed_in(api, "user-finance")
    change = "/api/v1/auth/password"
    new = "a brand new passphrase"
    r = await api.client.post(
        change, json={"old_password": "a guess", "new_password": new}, headers=here
    )
    assert r.status_code == 403
    r = await api.client.post(
        change, json={"old_password": PASSWORD, "new_password": "short"}, headers=here
    )
    assert r.status_code == 422
    r = await api.client.post(
        change, json={"old_password": PASSWORD, "new_password": new}, headers=here
    )
    assert r.status_code == 200
    assert r.json() == {"sessions_revoked": 2}  # `elsewhere` and the world's token
    assert await me_status(api, here) == 200
    assert await me_status(api, elsewhere) == await me_status(api, api.as_role(Role.FINANCE)) == 401
    assert await login(api, "user-finance") == 401
    assert await login(api, "user-finance", new) == 200
    uid = str(api.world.users[Role.FINANCE])
    assert [e[:3] for e in audit_events(api, "user.password")] == [
        ("user-finance", uid, "failed"),
        ("user-finance", uid, "ok"),
    ]


async def test_guessing_the_old_password_is_throttled(api: Api) -> None:
    """A stolen session cannot guess the password faster than a login could."""
    headers = api.as_role(Role.MANAGER)
    body = {"old_password": "a guess", "new_password": "a brand new passphrase"}
    codes = [
        (await api.client.post("/api/v1/auth/password", json=body, headers=headers)).status_code
        for _ in range(6)
    ]
    assert codes == [403] * 5 + [429]
    assert await login(api, "user-manager") == 429  # the same count as logins from there


async def test_admin_deactivates_a_user(api: Api) -> None:
    """Login refused (the same answer as a wrong password), sessions revoked at once, audited;
    activating lets them in again."""
    admin, manager = api.as_role(Role.ADMIN), api.as_role(Role.MANAGER)
    uid = api.world.users[Role.MANAGER]
    r = await api.client.post(f"/api/v1/users/{uid}/deactivate", headers=admin)
    assert r.status_code == 200
    assert r.json()["active"] is False
    assert await me_status(api, manager) == 401
    r = await post_login(api.client, "user-manager", PASSWORD)
    assert (r.status_code, r.json()["detail"]) == (401, "wrong username or password")
    assert ("auth.login", "inactive") in audit_outcomes(api, "user-manager")
    assert (await api.client.post(f"/api/v1/users/{uid}/activate", headers=admin)).is_success
    assert await login(api, "user-manager") == 200
    self_id = api.world.users[Role.ADMIN]
    r = await api.client.post(f"/api/v1/users/{self_id}/deactivate", headers=admin)
    assert r.status_code == 409
    assert [e[1:3] for e in audit_events(api, "user.deactivate")] == [(str(uid), "ok")]
    assert '"sessions_revoked": 1' in audit_events(api, "user.deactivate")[0][3]
    assert [e[1] for e in audit_events(api, "user.activate")] == [str(uid)]


async def test_admin_revokes_a_users_sessions(api: Api) -> None:
    admin = api.as_role(Role.ADMIN)
    tenant, again = api.as_role(Role.TENANT), await signed_in(api, "user-tenant")
    uid = api.world.users[Role.TENANT]
    r = await api.client.post(f"/api/v1/users/{uid}/revoke-sessions", headers=admin)
    assert r.json() == {"sessions_revoked": 2}
    assert (await me_status(api, tenant), await me_status(api, again)) == (401, 401)
    assert await login(api, "user-tenant") == 200  # the password still works
    other_admin_session = await signed_in(api, "user-admin")
    self_id = api.world.users[Role.ADMIN]
    r = await api.client.post(f"/api/v1/users/{self_id}/revoke-sessions", headers=admin)
    assert r.json() == {"sessions_revoked": 1}  # an admin keeps the session they asked on
    assert (await me_status(api, admin), await me_status(api, other_admin_session)) == (200, 401)
    assert [e[:3] for e in audit_events(api, "user.revoke_sessions")] == [
        ("user-admin", str(uid), "ok"),
        ("user-admin", str(self_id), "ok"),
    ]
