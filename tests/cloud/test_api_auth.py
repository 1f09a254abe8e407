"""Login, sessions, bearer tokens, throttling and lock-out, against the real app and database."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from cloud.api.deps import SESSION_COOKIE
from cloud.models import AuditEvent, Role
from tests.cloud.conftest import Api
from tests.cloud.world import PASSWORD


async def login(api: Api, username: str, password: str = PASSWORD, kind: str = "bearer") -> int:
    r = await api.client.post(
        "/api/v1/auth/login", json={"username": username, "password": password, "kind": kind}
    )
    return r.status_code


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
