"""Tenants, leases and units through the API: masking, reveal + audit, lifecycle, paging."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from cloud.ingest.store import register_gateway
from cloud.models import (
    AuditEvent,
    LateFeePolicyRow,
    Lease,
    Property,
    Role,
    Unit,
    UnitStatus,
)
from tests.cloud.conftest import Api
from tests.cloud.world import cn_id

NEW_TENANT = {
    "name": "王五",
    "id_number": cn_id(55),
    "phone": "+86 139 1234 5678",
    "bank_card": "6217 0000 1001 2345 678",
}


async def post(api: Api, role: Role, path: str, body: dict[str, Any]) -> Any:
    return await api.client.post(f"/api/v1{path}", json=body, headers=api.as_role(role))


async def patch(api: Api, role: Role, path: str, body: dict[str, Any]) -> Any:
    return await api.client.patch(f"/api/v1{path}", json=body, headers=api.as_role(role))


async def get(api: Api, role: Role, path: str, **params: Any) -> Any:
    return await api.client.get(f"/api/v1{path}", params=params, headers=api.as_role(role))


async def test_tenant_is_masked_everywhere_and_found_by_exact_phone(api: Api) -> None:
    pid = api.world.sites["P1"].property_id
    r = await post(api, Role.FRONT_DESK, "/tenants", {"property_id": pid, **NEW_TENANT})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id_number"] == cn_id(55)[:4] + "*" * 10 + cn_id(55)[-4:]
    assert created["phone"] == "139****5678"
    assert created["bank_card"] == "6217***********5678"
    # Search by a personal number: roles that may reveal it (tests/cloud/test_pii_search.py).
    found = (await get(api, Role.MANAGER, "/tenants", phone="13912345678")).json()
    assert [t["id"] for t in found["items"]] == [created["id"]]
    by_id = (await get(api, Role.MANAGER, "/tenants", id_number=cn_id(55))).json()
    assert [t["id"] for t in by_id["items"]] == [created["id"]]
    body = json.dumps(found)
    for secret in ("13912345678", cn_id(55), "6217000010012345678"):
        assert secret not in body


async def test_invalid_id_number_is_a_problem_naming_the_field(api: Api) -> None:
    pid = api.world.sites["P1"].property_id
    bad = {**NEW_TENANT, "property_id": pid, "id_number": cn_id(55)[:17] + "0"}
    if bad["id_number"] == cn_id(55):
        bad["id_number"] = cn_id(55)[:17] + "1"
    r = await post(api, Role.MANAGER, "/tenants", bad)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["field"] == "id_number"


async def test_reveal_is_audited_and_limited_by_role(api: Api) -> None:
    tid = api.world.sites["P1"].tenant_id
    body = {"fields": ["id_number", "phone"], "reason": "check-in verification"}
    r = await post(api, Role.MANAGER, f"/tenants/{tid}/reveal", body)
    assert r.status_code == 200
    assert r.json()["values"] == {"id_number": cn_id(1), "phone": "13800138001"}
    r = await post(api, Role.FINANCE, f"/tenants/{tid}/reveal",
                   {"fields": ["id_number"], "reason": "curious"})  # fmt: skip
    assert r.status_code == 403
    r = await post(api, Role.FINANCE, f"/tenants/{tid}/reveal",
                   {"fields": ["bank_card"], "reason": "deposit refund"})  # fmt: skip
    assert r.json()["values"] == {"bank_card": "6222020200112233441"}
    with api.sessions() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "tenant.reveal")).all()
    got = [(e.username, e.outcome, json.loads(e.detail)["fields"]) for e in events]
    assert got == [
        ("user-manager", "ok", ["id_number", "phone"]),
        ("user-finance", "denied", ["id_number"]),
        ("user-finance", "ok", ["bank_card"]),
    ]
    assert all(e.ip == "198.51.100.7" and e.target_id == str(tid) for e in events)
    assert all(cn_id(1) not in e.detail for e in events)
    audit = (await get(api, Role.MANAGER, "/audit", action="tenant.reveal")).json()
    assert len(audit["items"]) == 3


async def test_lease_lifecycle_through_the_api(api: Api) -> None:
    site = api.world.sites["P1"]
    other = await post(api, Role.MANAGER, "/tenants", {"property_id": site.property_id,
                                                        **NEW_TENANT})  # fmt: skip
    unit = await post(api, Role.MANAGER, "/units", {"building_id": site.building_id,
                      "code": "P1-102", "floor": 1, "area_m2": "28.5",
                      "base_rent_fen": 150000})  # fmt: skip
    assert unit.status_code == 201, unit.text
    body = {
        "unit_id": unit.json()["id"], "primary_tenant_id": site.tenant_id,
        "co_tenant_ids": [other.json()["id"]], "occupant_count": 2,
        "start_date": "2026-03-01", "end_date": "2027-02-28", "rent_fen": 150000,
        "deposit_fen": 300000, "payment_cycle_months": 3,
    }  # fmt: skip
    r = await post(api, Role.FRONT_DESK, "/leases", body)
    assert r.status_code == 201, r.text
    lease = r.json()
    assert (lease["status"], lease["co_tenant_ids"]) == ("draft", [other.json()["id"]])
    assert lease["needs_supervised_account"] is True  # deposit of two months
    lid = lease["id"]

    async def step(action: str, **extra: Any) -> Any:
        return await post(api, Role.FRONT_DESK, f"/leases/{lid}/transitions",
                          {"action": action, **extra})  # fmt: skip

    r = await step("activate")
    assert r.status_code == 409
    assert r.json()["allowed_actions"] == ["sign"]
    assert "cannot activate a draft lease" in r.json()["detail"]
    assert (await step("sign")).json()["status"] == "signed"
    api.clock.now = api.clock.now.replace(month=2)  # Feb: before the start
    r = await step("activate")
    assert r.status_code == 409
    assert "starts on 2026-03-01" in r.json()["detail"]
    api.clock.now += timedelta(days=40)
    assert (await step("activate")).json()["status"] == "active"
    with api.sessions() as s:
        assert s.get_one(Unit, unit.json()["id"]).status is UnitStatus.OCCUPIED
    r = await step("terminate", terminated_on="2026-06-30", reason="job move")
    assert r.json()["status"] == "terminated"
    assert r.json()["terminated_on"] == "2026-06-30"
    with api.sessions() as s:
        assert s.get_one(Unit, unit.json()["id"]).status is UnitStatus.VACANT
    # The tenant sees their leases, but not the other party's list of leases elsewhere.
    mine = (await get(api, Role.TENANT, "/leases")).json()["items"]
    assert {x["id"] for x in mine} == {site.lease_id, site.draft_lease_id, lid}


async def test_double_let_is_refused_and_renewal_links(api: Api) -> None:
    site = api.world.sites["P1"]  # its lease is signed for 2026
    body = {
        "unit_id": site.unit_id, "primary_tenant_id": site.tenant_id,
        "start_date": "2026-06-01", "end_date": "2026-08-31", "rent_fen": 1, "deposit_fen": 0,
    }  # fmt: skip
    lid = (await post(api, Role.MANAGER, "/leases", body)).json()["id"]
    r = await post(api, Role.MANAGER, f"/leases/{lid}/transitions", {"action": "sign"})
    assert r.status_code == 409
    assert f"already let by lease {site.lease_id}" in r.json()["detail"]
    r = await post(api, Role.MANAGER, f"/leases/{site.lease_id}/renewals", {"months": 12})
    assert r.status_code == 201
    new = r.json()
    assert (new["renewed_from_id"], new["start_date"], new["end_date"], new["status"]) == (
        site.lease_id, "2027-01-01", "2027-12-31", "draft",
    )  # fmt: skip
    again = await post(api, Role.MANAGER, f"/leases/{site.lease_id}/renewals", {"months": 12})
    assert again.status_code == 409


async def test_units_page_filter_and_search(api: Api) -> None:
    site = api.world.sites["P1"]
    for n in range(7):
        r = await post(api, Role.MANAGER, "/units", {"building_id": site.building_id,
                       "code": f"B-{n:03d}", "floor": 2, "area_m2": "20",
                       "base_rent_fen": 100000, "status": "vacant"})  # fmt: skip
        assert r.status_code == 201
    seen: list[str] = []
    after = None
    while True:
        params = {"q": "B-", "limit": 3} | ({"after": after} if after else {})
        page = (await get(api, Role.MAINTENANCE, "/units", **params)).json()
        seen += [u["code"] for u in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == [f"B-{n:03d}" for n in range(7)]
    occupied = (await get(api, Role.MAINTENANCE, "/units", status="occupied")).json()
    assert occupied["items"] == []
    dup = await post(api, Role.MANAGER, "/units", {"building_id": site.building_id,
                     "code": "B-000", "floor": 2, "area_m2": "20", "base_rent_fen": 1})  # fmt: skip
    assert dup.status_code == 409


async def test_gateways_are_seen_by_the_staff_of_their_property_only(api: Api) -> None:
    with api.sessions.begin() as s:
        register_gateway(s, "gw-unplaced", "in a box")
    p1 = api.world.sites["P1"]
    page = (await get(api, Role.ADMIN, "/gateways")).json()
    assert [g["id"] for g in page["items"]] == ["gw-P1", "gw-P2"]  # org A's, placed
    assert page["items"][0]["property_id"] == p1.property_id
    one = (await get(api, Role.ADMIN, "/gateways", limit=1)).json()
    assert (one["next_after"], [g["id"] for g in one["items"]]) == ("gw-P1", ["gw-P1"])
    after = (await get(api, Role.ADMIN, "/gateways", after="gw-P1")).json()
    assert [g["id"] for g in after["items"]] == ["gw-P2"]
    assert after["next_after"] is None
    assert (await get(api, Role.INSTALLER, "/gateways/gw-P1")).status_code == 200
    assert (await get(api, Role.INSTALLER, "/gateways/gw-P2")).status_code == 404
    assert (await get(api, Role.ADMIN, "/gateways/gw-unplaced")).status_code == 404
    assert (await get(api, Role.TENANT, "/gateways")).status_code == 403


async def test_draft_terms_are_edited_validated_and_audited(api: Api) -> None:
    site, other = api.world.sites["P1"], api.world.sites["P3"]
    path = f"/leases/{site.draft_lease_id}"
    r = await patch(api, Role.FRONT_DESK, path, {"rent_fen": 210000, "payment_cycle_months": 6,
                    "end_date": "2027-06-30", "proration": "thirty_day"})  # fmt: skip
    assert r.status_code == 200, r.text
    lease = r.json()
    assert (lease["rent_fen"], lease["payment_cycle_months"]) == (210000, 6)
    assert (lease["end_date"], lease["proration"]) == ("2027-06-30", "thirty_day")
    assert lease["needs_supervised_account"]  # six months at once
    assert lease["status"] == "draft"
    with api.sessions() as s:
        edit = s.scalars(select(AuditEvent).where(AuditEvent.action == "lease.edit")).one()
    assert json.loads(edit.detail) == {
        "end_date": ["2027-12-31", "2027-06-30"],
        "payment_cycle_months": [3, 6],
        "proration": ["calendar_days", "thirty_day"],
        "rent_fen": [200000, 210000],
    }
    assert (edit.target_id, edit.property_id) == (str(site.draft_lease_id), site.property_id)
    refused = {
        "end before start": {"end_date": "2026-12-31"},
        "cycle": {"payment_cycle_months": 4},
        "nothing": {},
        "null rent": {"rent_fen": None},
        "unknown term": {"unit_id": other.unit_id},
        "late-fee rule (billing's own route)": {"late_fee_policy_id": 1},
        "negative deposit": {"deposit_fen": -1},
    }
    for why, body in refused.items():
        r = await patch(api, Role.FRONT_DESK, path, body)
        assert r.status_code == 422, why
        assert r.headers["content-type"] == "application/problem+json", why
    r = await patch(api, Role.MANAGER, path, {"rent_fen": 210000})
    assert r.status_code == 200  # nothing changed: nothing audited
    with api.sessions() as s:
        edits = s.scalars(select(AuditEvent.id).where(AuditEvent.action == "lease.edit")).all()
    assert len(edits) == 1


async def test_a_lease_own_late_fee_rule_is_billings_and_a_renewal_gets_a_copy(api: Api) -> None:
    site = api.world.sites["P1"]
    body = {"unit_id": site.unit_id, "primary_tenant_id": site.tenant_id, "rent_fen": 1,
            "deposit_fen": 1, "start_date": "2028-01-01", "end_date": "2028-12-31",
            "late_fee_policy_id": site.late_fee_policy_id}  # fmt: skip
    r = await post(api, Role.MANAGER, "/leases", body)
    assert r.status_code == 422  # naming the property's default would make it this lease's
    with api.sessions.begin() as s:
        prop = s.get_one(Property, site.property_id)
        rule = LateFeePolicyRow(org_id=prop.org_id, property_id=prop.id, kind="fixed",
                                amount_fen=700, grace_days=3)  # fmt: skip
        s.add(rule)
        s.flush()
        s.get_one(Lease, site.lease_id).late_fee_policy_id = rule.id
    r = await post(api, Role.MANAGER, f"/leases/{site.lease_id}/renewals", {"months": 6})
    assert r.status_code == 201, r.text
    copied = r.json()["late_fee_policy_id"]
    assert copied not in (None, rule.id)
    with api.sessions() as s:
        copy = s.get_one(LateFeePolicyRow, copied)
        assert (copy.kind, copy.amount_fen, copy.grace_days) == ("fixed", 700, 3)


async def test_signed_lease_terms_are_fixed(api: Api) -> None:
    site = api.world.sites["P1"]
    before = (await get(api, Role.MANAGER, f"/leases/{site.lease_id}")).json()
    r = await patch(api, Role.MANAGER, f"/leases/{site.lease_id}", {"rent_fen": 1})
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["lease_status"] == "signed"
    assert "renewal" in problem["detail"]
    assert "renew" in problem["allowed_actions"]
    assert (await get(api, Role.MANAGER, f"/leases/{site.lease_id}")).json() == before
    # Signing a draft (next year's: no overlap) fixes its terms too.
    draft = f"/leases/{site.draft_lease_id}"
    r = await post(api, Role.MANAGER, f"{draft}/transitions", {"action": "sign"})
    assert r.json()["status"] == "signed", r.text
    assert (await patch(api, Role.MANAGER, draft, {"rent_fen": 1})).status_code == 409
    with api.sessions() as s:
        assert s.scalar(select(AuditEvent.id).where(AuditEvent.action == "lease.edit")) is None
