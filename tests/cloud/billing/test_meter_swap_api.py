"""Recording a meter swap through the API: scoped to the caller's organisation and property,
bounded, refused twice, audited."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from cloud.models import AuditEvent, Meter, MeterSwap, Role
from tests.cloud.conftest import Api
from tests.cloud.test_meter_ids import new_meter, org_b_admin

AT = "2026-02-28T16:00:00+00:00"


async def add_replacement(api: Api, code: str = "m-P1-new", **extra: Any) -> str:
    site = api.world.sites["P1"]
    body = new_meter(api, "P1", code, utility="electricity", unit_id=site.unit_id, **extra)
    r = await api.client.post("/api/v1/meters", json=body, headers=api.as_role(Role.ADMIN))
    assert r.status_code == 201, r.text
    return code


def swap(new: str, **extra: Any) -> dict[str, Any]:
    return {"new_meter_id": new, "swapped_at": AT, "old_final": "1234.5", "new_initial": "0.2",
            **extra}  # fmt: skip


async def test_a_swap_is_recorded_once_and_audited(api: Api) -> None:
    old = api.world.sites["P1"].meter_id
    new = await add_replacement(api)
    admin = api.as_role(Role.ADMIN)
    r = await api.client.post(f"/api/v1/meters/{old}/swap", json=swap(new), headers=admin)
    assert r.status_code == 201, r.text
    assert r.json() == {
        "old_meter_id": old, "new_meter_id": new, "swapped_at": "2026-02-28T16:00:00Z",
        "old_final": "1234.5", "new_initial": "0.2",
    }  # fmt: skip
    with api.sessions() as session:
        row = session.scalars(select(MeterSwap)).one()
        codes = {m.id: m.code for m in session.scalars(select(Meter))}
        assert (codes[row.old_meter_id], codes[row.new_meter_id]) == (old, new)
        assert str(row.old_final).rstrip("0") == "1234.5"
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "meter.swap")).one()
        assert event.property_id == api.world.sites["P1"].property_id
    # a meter is swapped out once; the new one cannot be swapped back for the old
    again = await api.client.post(f"/api/v1/meters/{old}/swap", json=swap(new), headers=admin)
    assert again.status_code == 422
    back = await api.client.post(f"/api/v1/meters/{new}/swap", json=swap(old), headers=admin)
    assert (back.status_code, "in a swap already" in back.text) == (422, True)


async def test_another_organisations_meters_are_not_found(api: Api) -> None:
    old, theirs = api.world.sites["P1"].meter_id, api.world.sites["P3"].meter_id
    new = await add_replacement(api)
    org_b = org_b_admin(api)
    r = await api.client.post(f"/api/v1/meters/{old}/swap", json=swap(new), headers=org_b)
    assert r.status_code == 404
    admin = api.as_role(Role.ADMIN)
    r = await api.client.post(f"/api/v1/meters/{old}/swap", json=swap(theirs), headers=admin)
    assert r.status_code == 404
    with api.sessions() as session:
        assert session.scalars(select(MeterSwap)).all() == []


async def test_a_role_without_meter_writes_is_refused(api: Api) -> None:
    old = api.world.sites["P1"].meter_id
    new = await add_replacement(api)
    r = await api.client.post(f"/api/v1/meters/{old}/swap", json=swap(new),
                              headers=api.as_role(Role.FINANCE))  # fmt: skip
    assert r.status_code == 403


@pytest.mark.parametrize(
    "change",
    [
        {"old_final": "-1"},
        {"new_initial": "1000000000.0001"},
        {"old_final": "1e400"},
        {"old_final": "NaN"},
        {"old_final": "1.00001"},  # beyond the Numeric(18, 4) column
        {"swapped_at": "2026-02-28T16:00:00"},  # no timezone
        {"swapped_at": "1999-12-31T23:59:59+00:00"},
        {"swapped_at": "2026-03-02T00:00:00+00:00"},  # after the app's now (Mar 1)
        {"new_meter_id": "m\u0000x"},
    ],
)
async def test_values_out_of_bounds_are_refused(api: Api, change: dict[str, Any]) -> None:
    old = api.world.sites["P1"].meter_id
    new = await add_replacement(api)
    r = await api.client.post(f"/api/v1/meters/{old}/swap", json=swap(new, **change),
                              headers=api.as_role(Role.ADMIN))  # fmt: skip
    assert r.status_code in {400, 422}, r.text
    with api.sessions() as session:
        assert session.scalars(select(MeterSwap)).all() == []


async def test_a_value_beyond_the_meters_digits_or_another_unit_is_refused(api: Api) -> None:
    old = api.world.sites["P1"].meter_id
    small = await add_replacement(api, "m-P1-5d", digits=5)
    admin = api.as_role(Role.ADMIN)
    r = await api.client.post(f"/api/v1/meters/{old}/swap",
                              json=swap(small, new_initial="100000"), headers=admin)  # fmt: skip
    assert (r.status_code, "5 digits" in r.text) == (422, True)
    master = new_meter(api, "P1", "m-P1-master", utility="electricity")
    assert (await api.client.post("/api/v1/meters", json=master, headers=admin)).status_code == 201
    r = await api.client.post(f"/api/v1/meters/{old}/swap", json=swap("m-P1-master"), headers=admin)
    assert (r.status_code, "same unit" in r.text) == (422, True)
