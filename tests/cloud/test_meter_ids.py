"""Meter ids through the API: unique in an organisation, never revealing another's, and a
meter's readings only from the gateway bound to it (of its own property)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cloud.models import Organisation, Reading, Role
from cloud.security import tokens
from tests.cloud.conftest import Api
from tests.cloud.world import NOW, add_user


def org_b_admin(api: Api) -> dict[str, str]:
    """A bearer header for an admin of org B (the world's users are all of org A)."""
    with api.sessions.begin() as session:
        org = session.get_one(Organisation, api.world.sites["P3"].org_id)
        user = add_user(session, org, "admin-b", Role.ADMIN, [])
        token, _ = tokens.issue(session, user.id, "bearer", NOW)
    return {"Authorization": f"Bearer {token}"}


def new_meter(api: Api, site: str, code: str, **extra: Any) -> dict[str, Any]:
    s = api.world.sites[site]
    return {"id": code, "building_id": s.building_id, "utility": "water", "profile": "p", **extra}


def add_readings(api: Api, gateway_id: str, code: str, values: list[float]) -> None:
    with api.sessions.begin() as session:
        session.add_all(
            Reading(
                gateway_id=gateway_id,
                seq=9000 + i,
                meter_id=code,
                point="energy",
                value=v,
                unit="kWh",
                ts=NOW - timedelta(minutes=i),
            )
            for i, v in enumerate(values)
        )


async def test_another_organisation_may_use_the_same_meter_id_and_sees_none_of_its_readings(
    api: Api,
) -> None:
    p1 = api.world.sites["P1"]
    add_readings(api, p1.gateway_id, p1.meter_id, [10.0, 9.0])
    org_b = org_b_admin(api)
    body = new_meter(api, "P3", p1.meter_id, gateway_id=api.world.sites["P3"].gateway_id)
    r = await api.client.post("/api/v1/meters", json=body, headers=org_b)
    assert r.status_code == 201, r.text
    assert (r.json()["id"], r.json()["gateway_id"]) == (p1.meter_id, "gw-P3")
    r = await api.client.get(f"/api/v1/meters/{p1.meter_id}/readings", headers=org_b)
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []
    r = await api.client.get(f"/api/v1/meters/{p1.meter_id}", headers=org_b)
    assert r.json()["property_id"] == api.world.sites["P3"].property_id
    # org A still sees its own meter's readings, and only those of its own gateway
    add_readings(api, "gw-P3", p1.meter_id, [500000.0])
    admin_a = api.as_role(Role.ADMIN)
    r = await api.client.get(f"/api/v1/meters/{p1.meter_id}/readings", headers=admin_a)
    assert [(x["value"], x["gateway_id"]) for x in r.json()["items"]] == [
        (10.0, "gw-P1"),
        (9.0, "gw-P1"),
    ]


async def test_a_duplicate_is_a_conflict_in_the_organisation_only(api: Api) -> None:
    admin_a = api.as_role(Role.ADMIN)
    p1, p3 = api.world.sites["P1"], api.world.sites["P3"]
    r = await api.client.post("/api/v1/meters", json=new_meter(api, "P2", p1.meter_id),
                              headers=admin_a)  # fmt: skip
    assert r.status_code == 409, r.text
    # org B's meter id: as unknown to org A as one nobody has, and free for org A to use
    for code in (p3.meter_id, "m-nobody"):
        r = await api.client.get(f"/api/v1/meters/{code}", headers=admin_a)
        assert (r.status_code, r.json()["detail"]) == (404, f"no meter {code} in your scope")
    r = await api.client.post("/api/v1/meters", json=new_meter(api, "P1", p3.meter_id),
                              headers=admin_a)  # fmt: skip
    assert r.status_code == 201, r.text


async def test_a_meter_binds_only_to_a_gateway_of_its_property(api: Api) -> None:
    admin_a = api.as_role(Role.ADMIN)
    pid = api.world.sites["P1"].property_id
    for n, gateway in enumerate(("gw-P2", "gw-P3", "gw-nobody")):
        body = new_meter(api, "P1", f"m-bind-{n}", gateway_id=gateway)
        r = await api.client.post("/api/v1/meters", json=body, headers=admin_a)
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == f"no gateway {gateway!r} in property {pid}"
    body = new_meter(api, "P1", "m-bind-ok", gateway_id="gw-P1")
    r = await api.client.post("/api/v1/meters", json=body, headers=admin_a)
    assert (r.status_code, r.json()["gateway_id"]) == (201, "gw-P1")
    r = await api.client.get(f"/api/v1/meters?property_id={pid}&limit=1", headers=admin_a)
    assert r.json()["next_after"] == r.json()["items"][0]["id"] == "m-P1-1"
