"""Late-fee policies (most specific wins) and usage holds through the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from cloud.billing.service.fees import Policies
from cloud.models import AuditEvent, InvoiceLine, LineKind, Role
from tests.cloud.conftest import Api


async def call(api: Api, role: Role, method: str, path: str, body: Any = None) -> Any:
    return await api.client.request(method, f"/api/v1{path}", json=body, headers=api.as_role(role))


async def test_the_most_specific_late_fee_policy_wins(api: Api) -> None:
    site = api.world.sites["P1"]
    path = f"/leases/{site.lease_id}/late-fee-policy"
    got = (await call(api, Role.FINANCE, "GET", path)).json()
    assert got["source"] == "property"
    assert got["policy"]["id"] == site.late_fee_policy_id
    # the lease's own rule overrides the property's; the tenant may read it
    own = await call(api, Role.MANAGER, "PUT", path, {"kind": "fixed", "amount_fen": 2000})
    assert own.status_code == 200, own.text
    assert own.json()["source"] == "lease"
    mine = (await call(api, Role.TENANT, "GET", path)).json()
    assert (mine["source"], mine["policy"]["amount_fen"]) == ("lease", 2000)
    with api.sessions() as s:  # a lease's rule is not the property's default, though newer
        default = Policies.load(s, site.property_id).property_default
        assert default is not None
        assert default.id == site.late_fee_policy_id
    rule_id = own.json()["policy"]["id"]
    used = await call(api, Role.MANAGER, "DELETE", f"/late-fee-policies/{rule_id}")
    assert used.status_code == 409
    assert str(site.lease_id) in used.json()["detail"]
    # removing the lease's rule and then the property's leaves the organisation's default
    back = (await call(api, Role.MANAGER, "DELETE", path)).json()
    assert back["source"] == "property"
    gone = await call(api, Role.MANAGER, "DELETE", f"/late-fee-policies/{site.late_fee_policy_id}")
    assert gone.status_code == 204
    org = (await call(api, Role.FINANCE, "GET", path)).json()
    assert (org["source"], org["policy"]["rate"], org["policy"]["mode"]) == (
        "org",
        "5/10000",
        "daily",
    )
    with api.sessions() as s:
        actions = s.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.action.like("late_fee_policy.%"))
            .order_by(AuditEvent.id)
        ).all()
    assert actions == ["late_fee_policy.lease", "late_fee_policy.lease", "late_fee_policy.delete"]


async def test_only_an_admin_sets_the_organisation_default(api: Api) -> None:
    body = {"kind": "fixed", "amount_fen": 1000, "grace_days": 5}
    assert (await call(api, Role.MANAGER, "POST", "/late-fee-policies", body)).status_code == 403
    made = await call(api, Role.ADMIN, "POST", "/late-fee-policies", body)
    assert made.status_code == 201, made.text
    assert made.json()["property_id"] is None
    new_id = made.json()["id"]
    # managers see it (it applies to their property) but may not change it
    listed = (await call(api, Role.MANAGER, "GET", "/late-fee-policies")).json()["items"]
    assert new_id in [p["id"] for p in listed]
    change = {"kind": "fixed", "amount_fen": 1}
    assert (
        await call(api, Role.MANAGER, "PUT", f"/late-fee-policies/{new_id}", change)
    ).status_code == 403
    # the newest org default wins where the property has none
    site = api.world.sites["P2"]
    await call(api, Role.ADMIN, "DELETE", f"/late-fee-policies/{site.late_fee_policy_id}")
    got = (await call(api, Role.ADMIN, "GET", f"/leases/{site.lease_id}/late-fee-policy")).json()
    assert (got["source"], got["policy"]["id"]) == ("org", new_id)


async def test_late_fee_policy_terms_are_validated(api: Api) -> None:
    pid = api.world.sites["P1"].property_id
    for bad in (
        {"kind": "percent", "rate": "0"},
        {"kind": "percent", "rate": "abc"},
        {"kind": "percent", "rate": "3/2"},
        {"kind": "fixed", "amount_fen": 0},
        {"kind": "fixed", "amount_fen": 100, "grace_days": -1},
    ):
        r = await call(api, Role.MANAGER, "POST", "/late-fee-policies", {"property_id": pid, **bad})
        assert r.status_code == 422, bad
    ok = await call(
        api,
        Role.MANAGER,
        "POST",
        "/late-fee-policies",
        {"property_id": pid, "kind": "percent", "rate": "0.0005", "mode": "daily", "cap_fen": 9},
    )
    assert ok.status_code == 201
    assert ok.json()["rate"] == "1/2000"


async def test_a_released_hold_is_billed_by_the_next_run_once(api: Api) -> None:
    site = api.world.sites["P1"]
    held = (await call(api, Role.FINANCE, "GET", "/usage-holds?released=false")).json()["items"]
    assert [(h["id"], h["meter_id"], h["quantity"]) for h in held] == [
        (site.hold_id, site.meter_id, "900.0000")
    ]
    no_note = await call(api, Role.FINANCE, "POST", f"/usage-holds/{site.hold_id}/release", {})
    assert no_note.status_code == 422
    released = await call(
        api,
        Role.FINANCE,
        "POST",
        f"/usage-holds/{site.hold_id}/release",
        {"quantity": "850", "note": "checked on site: the reading is right, minus a test load"},
    )
    assert released.status_code == 200, released.text
    assert released.json()["released"] is True
    # the March run bills February's usage: the corrected 850 kWh at the flat 0.60
    run = await call(
        api, Role.FINANCE, "POST", "/billing-runs", {"property_id": site.property_id,
                                                     "period": "2026-03"}
    )  # fmt: skip
    assert run.status_code == 200, run.text
    with api.sessions() as s:
        lines = s.execute(
            select(InvoiceLine.quantity, InvoiceLine.amount_fen).where(
                InvoiceLine.lease_id == site.lease_id, InvoiceLine.kind == LineKind.UTILITY
            )
        ).all()
    assert [(str(q), a) for q, a in lines] == [("850.0000", 51000)]
    again = await call(
        api, Role.FINANCE, "POST", f"/usage-holds/{site.hold_id}/release", {"note": "again"}
    )
    assert again.status_code == 409
    assert "already billed" in again.json()["detail"]
    other = api.world.sites["P2"].hold_id
    hidden = await call(api, Role.FINANCE, "POST", f"/usage-holds/{other}/release", {"note": "x"})
    assert hidden.status_code == 404
