"""Search by a personal number is an oracle: only roles that may see the number use it, every
search is audited without the number, and each user has a bounded number of them per window."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from cloud.models import AuditEvent, Role
from cloud.security import pii_search
from tests.cloud.conftest import Api
from tests.cloud.world import cn_id

V1 = "/api/v1"
LIMIT = pii_search.SEARCHES_PER_WINDOW


def search_events(api: Api) -> list[AuditEvent]:
    with api.sessions() as s:
        query = select(AuditEvent).where(AuditEvent.action == pii_search.ACTION)
        return list(s.scalars(query.order_by(AuditEvent.id)))


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.FINANCE])
async def test_completing_a_phone_mask_by_search_is_refused(api: Api, role: Role) -> None:
    """The attack: try completions of the mask the role is shown until the search finds the
    tenant. The hidden digits of P1's tenant are 0013, so 20 guesses used to find it."""
    site = api.world.sites["P1"]
    headers = api.as_role(role)
    mask = (await api.client.get(f"{V1}/tenants/{site.tenant_id}", headers=headers)).json()
    head, tail = mask["phone"][:3], mask["phone"][-4:]
    answers, recovered = [], []
    for guess in range(20):
        phone = f"{head}{guess:04d}{tail}"
        r = await api.client.get(f"{V1}/tenants", headers=headers, params={"phone": phone})
        answers.append(r.status_code)
        if r.json().get("items"):
            recovered.append(phone)
    assert recovered == [], "the search completed the mask"
    assert answers == [403] * 20
    assert r.headers["content-type"] == "application/problem+json"
    r = await api.client.get(f"{V1}/tenants", headers=headers, params={"id_number": cn_id(1)})
    assert r.status_code == 403
    events = search_events(api)
    assert [(e.username, e.outcome) for e in events] == [(f"user-{role}", "denied")] * 21
    assert json.loads(events[0].detail) == {"fields": ["phone"]}
    assert all(tail not in e.detail and "1380013" not in e.detail for e in events)


async def test_search_by_phone_is_audited_and_limited_per_user(api: Api) -> None:
    site = api.world.sites["P1"]
    manager = api.as_role(Role.MANAGER)

    async def search(headers: dict[str, str]) -> object:
        return await api.client.get(f"{V1}/tenants", headers=headers,
                                    params={"phone": "138 0013 8001"})  # fmt: skip

    for _ in range(LIMIT):
        r = await search(manager)
        assert r.status_code == 200, r.text
        assert [t["id"] for t in r.json()["items"]] == [site.tenant_id]
    r = await search(manager)
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == str(int(pii_search.WINDOW.total_seconds()))
    assert "items" not in r.json()
    assert (await search(api.as_role(Role.ADMIN))).status_code == 200  # the limit is per user

    events = search_events(api)
    assert [(e.username, e.outcome) for e in events] == (
        [("user-manager", "ok")] * LIMIT + [("user-manager", "limited"), ("user-admin", "ok")]
    )
    assert {e.ip for e in events} == {"198.51.100.7"}
    assert all(e.property_id == site.property_id for e in events)
    assert all(
        json.loads(e.detail) == {"fields": ["phone"], "matches": [site.tenant_id]} for e in events
    )
    assert all("8001" not in e.detail for e in events)

    api.clock.now += pii_search.WINDOW - timedelta(seconds=1)
    assert (await search(manager)).status_code == 429
    api.clock.now += timedelta(seconds=1)
    assert (await search(manager)).status_code == 200


async def test_concurrent_searches_do_not_slip_past_the_limit(api: Api) -> None:
    """Requests in flight at once (threads on one database) are counted one at a time."""
    user_id = api.world.users[Role.MANAGER]
    with api.sessions() as s:
        s.add_all(
            AuditEvent(ts=api.clock.now, user_id=user_id, username="user-manager",
                       action=pii_search.ACTION, outcome="ok", detail="{}")
            for _ in range(LIMIT - 5)
        )  # fmt: skip
        s.commit()
    manager = api.as_role(Role.MANAGER)
    answers = await asyncio.gather(
        *(
            api.client.get(f"{V1}/tenants", headers=manager, params={"id_number": cn_id(1)})
            for _ in range(20)
        )
    )
    assert sorted(r.status_code for r in answers) == [200] * 5 + [429] * 15
