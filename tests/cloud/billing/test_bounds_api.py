"""Unbounded numbers at the API: every money, price, rate and quantity input (and a lease's
dates) is refused with a 422 problem naming the field, before anything is stored."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from cloud.models import Lease, Role, Tariff
from tests.cloud.conftest import Api

HUGE = ["1e400", "-1", "NaN", "Infinity", "-Infinity", "1e300", 1e300, "1e-400"]


def tariff(**change: Any) -> dict[str, Any]:
    tier = {"lower": "0", "price": "0.60", **change.pop("tier", {})}
    return {"utility": "electricity", "effective_from": "2026-06-01", "kind": "flat",
            "tiers": [tier], **change}  # fmt: skip


async def refused(api: Api, method: str, path: str, body: dict[str, Any], field: str) -> None:
    got = await api.client.request(
        method, f"/api/v1{path}", json=body, headers=api.as_role(Role.ADMIN)
    )
    assert got.status_code == 422, got.text
    assert got.headers["content-type"].startswith("application/problem+json")
    named = [e["loc"] for e in got.json()["errors"]]
    assert any(field in loc for loc in named), named


TARIFF_FIELDS = [
    ("price", lambda v: tariff(tier={"price": v})),
    ("upper", lambda v: tariff(kind="tiered", tier={"upper": v})),
    ("lower", lambda v: tariff(tier={"lower": v})),
    ("common_price", lambda v: tariff(common_price=v)),
    ("spike_multiple", lambda v: tariff(spike_multiple=v)),
    ("owner_share_bp", lambda v: tariff(owner_share_bp=v)),
]


async def test_a_tariff_with_an_unbounded_number_is_refused(api: Api) -> None:
    pid = api.world.sites["P1"].property_id
    with api.sessions() as s:
        before = s.scalar(select(func.count()).select_from(Tariff))
    for field, make in TARIFF_FIELDS:
        for value in HUGE:
            await refused(api, "POST", "/tariffs", {**make(value), "property_id": pid}, field)
    for share in (10_001, -1, 2.5, 10**20):
        body = {**tariff(owner_share_bp=share), "property_id": pid}
        await refused(api, "POST", "/tariffs", body, "owner_share_bp")
    with api.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Tariff)) == before


async def test_a_tariff_within_the_bounds_is_taken(api: Api) -> None:
    pid = api.world.sites["P1"].property_id
    body = {**tariff(tier={"price": "10000"}, common_price="0.588", spike_multiple="1000",
                     owner_share_bp=10_000),
            "property_id": pid}  # fmt: skip
    got = await api.client.post("/api/v1/tariffs", json=body, headers=api.as_role(Role.ADMIN))
    assert got.status_code == 201, got.text
    assert got.json()["owner_share_bp"] == 10_000
    # Trailing zeros pass the decimal-places check; stored as sent they overflowed the text
    # columns (PostgreSQL: 500). They are cut to the places allowed.
    zeros = "0" * 30
    body = {**tariff(tier={"price": f"0.5{zeros}"}, common_price=f"0.588{zeros}",
                     spike_multiple=f"3.{zeros}", effective_from="2026-07-01"),
            "property_id": pid}  # fmt: skip
    got = await api.client.post("/api/v1/tariffs", json=body, headers=api.as_role(Role.ADMIN))
    assert got.status_code == 201, got.text
    made = got.json()
    assert (made["tiers"][0]["price"], made["common_price"], made["spike_multiple"]) == (
        "0.500000",
        "0.588000",
        "3.00",
    )


MONEY = [10**20, 2_000_000_001, -1, 1e300, "1e400"]


async def test_money_on_every_route_is_bounded(api: Api) -> None:
    for value in MONEY:
        await money_refused(api, value)


async def money_refused(api: Api, value: Any) -> None:
    site = api.world.sites["P1"]
    lease = {"unit_id": site.unit_id, "primary_tenant_id": site.tenant_id,
             "start_date": "2028-01-01", "end_date": "2028-12-31", "rent_fen": 100000,
             "deposit_fen": 100000}  # fmt: skip
    policy = {"kind": "fixed", "amount_fen": 500}
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/payments", {"lease_id": site.lease_id, "amount_fen": value}, "amount_fen"),
        ("POST", f"/leases/{site.lease_id}/deposit-settlement",
         {"deductions": [{"kind": "damage", "amount_fen": value, "reason": "x"}]}, "amount_fen"),
        ("POST", "/late-fee-policies", {**policy, "amount_fen": value}, "amount_fen"),
        ("POST", "/late-fee-policies", {**policy, "cap_fen": value}, "cap_fen"),
        ("PUT", f"/leases/{site.lease_id}/late-fee-policy",
         {**policy, "min_balance_fen": value}, "min_balance_fen"),
        ("POST", "/leases", {**lease, "rent_fen": value}, "rent_fen"),
        ("POST", "/leases", {**lease, "deposit_fen": value}, "deposit_fen"),
        ("PATCH", f"/leases/{site.draft_lease_id}", {"rent_fen": value}, "rent_fen"),
        ("POST", f"/leases/{site.lease_id}/renewals", {"months": 12, "rent_fen": value},
         "rent_fen"),
        ("POST", "/units", {"building_id": site.building_id, "code": "X-1", "floor": 1,
                            "area_m2": "30", "base_rent_fen": value}, "base_rent_fen"),
        ("POST", "/units", {"building_id": site.building_id, "code": "X-1", "floor": 1,
                            "area_m2": value, "base_rent_fen": 1}, "area_m2"),
        ("POST", f"/usage-holds/{site.hold_id}/release", {"quantity": value, "note": "ok"},
         "quantity"),
    ]  # fmt: skip
    for method, path, body, field in cases:
        await refused(api, method, path, body, field)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("2000-01-01", "9999-12-31", "end_date"),
        ("0001-01-01", "2026-12-31", "start_date"),
        ("2026-01-01", "2046-01-01", "end_date"),  # longer than twenty years
    ],
)
async def test_a_lease_with_dates_out_of_range_is_refused(
    api: Api, start: str, end: str, field: str
) -> None:
    site = api.world.sites["P1"]
    body = {"unit_id": site.unit_id, "primary_tenant_id": site.tenant_id, "start_date": start,
            "end_date": end, "rent_fen": 100000, "deposit_fen": 100000}  # fmt: skip
    headers = api.as_role(Role.ADMIN)
    with api.sessions() as s:
        before = s.scalar(select(func.count()).select_from(Lease))
    got = await api.client.post("/api/v1/leases", json=body, headers=headers)
    assert got.status_code == 422, got.text
    assert field in got.text
    patched = await api.client.patch(
        f"/api/v1/leases/{site.draft_lease_id}",
        json={"start_date": start, "end_date": end},
        headers=headers,
    )
    assert patched.status_code == 422, patched.text
    with api.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Lease)) == before
        draft = s.get_one(Lease, site.draft_lease_id)
        assert str(draft.end_date) == "2027-12-31"
