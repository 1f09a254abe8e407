"""The doors API under attack: other organisations' doors and gateways, roles that may not
issue codes, tenants passing on doors that are not theirs, windows out of bounds, NUL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cloud.access.records import door_secret
from cloud.models import AuditEvent, Door, Event, PinCredential, Role
from cloud.security.crypto import FieldKeys
from protocols.access import codes
from tests.cloud.conftest import Api
from tests.cloud.world import NOW

V1 = "/api/v1"


def hour(offset_h: int = 0) -> str:
    return (NOW + timedelta(hours=offset_h)).isoformat()


async def test_other_organisations_doors_and_gateways_are_not_there(api: Api) -> None:
    manager = api.as_role(Role.MANAGER)
    p1, p3 = api.world.sites["P1"], api.world.sites["P3"]
    for url in (f"/doors/{p3.door_id}", f"/doors/{p3.door_id}/events",
                f"/gateways/{p3.gateway_id}/access"):  # fmt: skip
        r = await api.client.get(V1 + url, headers=manager)
        assert r.status_code == 404, r.text
    # a door of one's own property on another organisation's gateway, or its unit
    body = {"gateway_id": p3.gateway_id, "code": "x", "scope": "property",
            "property_id": p1.property_id}  # fmt: skip
    assert (await api.client.post(f"{V1}/doors", json=body, headers=manager)).status_code == 404
    body = {"gateway_id": p1.gateway_id, "code": "x", "scope": "unit",
            "property_id": p1.property_id, "unit_id": p3.unit_id}  # fmt: skip
    assert (await api.client.post(f"{V1}/doors", json=body, headers=manager)).status_code == 404
    code = {"valid_from": hour(), "hours": 4}
    r = await api.client.post(f"{V1}/doors/{p3.door_id}/offline-codes", json=code, headers=manager)
    assert r.status_code == 404
    visit = {"door_ids": [p3.door_id], "visitor_name": "x", "valid_from": hour(),
             "valid_until": hour(2)}  # fmt: skip
    r = await api.client.post(f"{V1}/visitor-passes", json=visit, headers=manager)
    assert r.status_code == 404


async def test_offline_codes_are_a_managers_verifiable_and_audited(
    api: Api, keys: FieldKeys
) -> None:
    door_id = api.world.sites["P1"].door_id
    url = f"{V1}/doors/{door_id}/offline-codes"
    body = {"valid_from": hour(), "hours": 4, "note": "plumber"}
    r = await api.client.post(url, json=body, headers=api.as_role(Role.FRONT_DESK))
    assert r.status_code == 403
    issued = []
    for _ in range(codes.COUNTERS):
        r = await api.client.post(url, json=body, headers=api.as_role(Role.MANAGER))
        assert r.status_code == 201, r.text
        issued.append(r.json())
    assert [c["counter"] for c in issued] == list(range(codes.COUNTERS))
    r = await api.client.post(url, json=body, headers=api.as_role(Role.MANAGER))
    assert r.status_code == 409  # every code of that window is out
    with api.sessions() as session:
        door = session.get_one(Door, door_id)
        secret = door_secret(keys, door)
        logged = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "door.offline_code")
        ).all()
    assert len(logged) == codes.COUNTERS
    assert all(c["code"] not in e.detail for c in issued for e in logged)
    window = codes.match(secret, door.code, 9, issued[0]["code"], NOW + timedelta(hours=1))
    assert window is not None
    assert window.counter == 0
    r = await api.client.get(f"{V1}/doors/{door_id}/audit", headers=api.as_role(Role.MANAGER))
    assert len(r.json()["items"]) == codes.COUNTERS


async def test_code_windows_stay_on_the_grid_and_in_bounds(api: Api) -> None:
    url = f"{V1}/doors/{api.world.sites['P1'].door_id}/offline-codes"
    manager = api.as_role(Role.MANAGER)
    for body in (
        {"valid_from": (NOW + timedelta(minutes=30)).isoformat(), "hours": 4},  # not on the hour
        {"valid_from": hour(), "hours": 3},  # not a grid length
        {"valid_from": hour(-5), "hours": 4},  # over already
        {"valid_from": hour(24 * 40), "hours": 4},  # too far ahead
        {"valid_from": "2026-03-01T02:00:00", "hours": 4},  # no time zone
        {"valid_from": hour(), "hours": 4, "note": "a\x00b"},  # NUL
    ):
        r = await api.client.post(url, json=body, headers=manager)
        assert r.status_code == 422, body


async def test_a_tenant_passes_on_only_their_own_doors_within_their_lease(api: Api) -> None:
    tenant = api.as_role(Role.TENANT)
    p1, p2 = api.world.sites["P1"], api.world.sites["P2"]
    url = f"{V1}/visitor-passes"

    def visit(door_id: int, start: str, end: str, **extra: object) -> dict[str, object]:
        return {"door_ids": [door_id], "visitor_name": "小李", "valid_from": start,
                "valid_until": end, **extra}  # fmt: skip

    r = await api.client.post(url, json=visit(p1.door_id, hour(), hour(3), max_uses=2),
                              headers=tenant)  # fmt: skip
    assert r.status_code == 201, r.text
    out = r.json()
    assert len(out["code"]) == 8
    assert out["keypad_id"].startswith("2")
    listed = (await api.client.get(url, headers=tenant)).json()["items"]
    assert out["id"] in {p["id"] for p in listed}
    assert all(p["code"] is None for p in listed)  # shown once
    # a door of another property (not the tenant's), a window past the lease's end
    r = await api.client.post(url, json=visit(p2.door_id, hour(), hour(3)), headers=tenant)
    assert r.status_code == 404
    late = datetime(2026, 12, 31, 10, tzinfo=UTC)
    r = await api.client.post(url, json=visit(p1.door_id, late.isoformat(),
                              (late + timedelta(days=2)).isoformat()), headers=tenant)  # fmt: skip
    assert r.status_code == 422
    for bad in (
        visit(p1.door_id, hour(), hour(24 * 8)),  # longer than a week
        visit(p1.door_id, hour(-2), hour(1)),  # backdated
        visit(p1.door_id, hour(), hour(1), max_uses=101),
        visit(p1.door_id, hour(1), hour()),  # ends before it starts
        visit(p1.door_id, hour(), hour(1), visitor_name="x\x00"),
    ):
        assert (await api.client.post(url, json=bad, headers=tenant)).status_code == 422, bad
    # revoking: the tenant's own pass, not the desk's
    r = await api.client.post(f"{url}/{out['id']}/revoke", headers=tenant)
    assert (r.status_code, r.json()["revoked"]) == (200, True)


async def test_pins_are_kept_as_hashes_and_weak_ones_refused(api: Api) -> None:
    tenant_id = api.world.sites["P1"].tenant_id
    url = f"{V1}/tenants/{tenant_id}/pin"
    for weak in ("1234", "0000", "98765", "12a4", "123456789"):
        r = await api.client.put(url, json={"pin": weak}, headers=api.as_role(Role.TENANT))
        assert r.status_code == 422, weak
    r = await api.client.put(url, json={"pin": "582913"}, headers=api.as_role(Role.TENANT))
    assert r.status_code == 200
    assert "582913" not in r.text
    other = api.world.sites["P2"].tenant_id
    r = await api.client.put(f"{V1}/tenants/{other}/pin", json={"pin": "582913"},
                             headers=api.as_role(Role.TENANT))  # fmt: skip
    assert r.status_code == 404
    with api.sessions() as session:
        row = session.scalars(
            select(PinCredential).where(PinCredential.tenant_id == tenant_id)
        ).one()
    assert row.pin_hash.startswith("$argon2id$")


async def test_door_events_page_newest_first_and_only_the_doors_own(api: Api) -> None:
    p1 = api.world.sites["P1"]
    with api.sessions() as session:
        door = session.get_one(Door, p1.door_id)
        rows = [
            Event(gateway_id=p1.gateway_id, epoch=1, seq=i, type="access.decision",
                  source=door.code, ts=NOW + timedelta(seconds=i // 2), data={"granted": True})
            for i in range(1, 6)
        ] + [
            Event(gateway_id=api.world.sites["P2"].gateway_id, epoch=1, seq=1,
                  type="access.decision", source=door.code, ts=NOW, data={})
        ]  # fmt: skip
        session.add_all(rows)
        session.commit()
    url = f"{V1}/doors/{p1.door_id}/events"
    seen: list[int] = []
    after = None
    while True:
        params = {"limit": 2} | ({"after": after} if after else {})
        page = (await api.client.get(url, params=params, headers=api.as_role(Role.MANAGER))).json()
        seen += [e["seq"] for e in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == [5, 4, 3, 2, 1]
    r = await api.client.get(url, params={"after": "bogus"}, headers=api.as_role(Role.MANAGER))
    assert r.status_code == 422
