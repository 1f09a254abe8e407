"""Daily usage and meter health through the API (what the console shows, for integrations):
the same service answers, limited to the caller's properties; another organisation's meter or
property is refused as if it did not exist."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cloud.billing.service import daily
from cloud.billing.service.terms import day_start
from cloud.models import Reading, Role
from tests.cloud.conftest import Api

TZ = ZoneInfo("Asia/Shanghai")


async def get(api: Api, role: Role, path: str, **params: Any) -> Any:
    return await api.client.get(f"/api/v1{path}", params=params, headers=api.as_role(role))


def counted(api: Api) -> None:
    """P1's bound meter: 100 kWh before Feb 27, 110 before Feb 28, 125.5 before Mar 1."""
    site = api.world.sites["P1"]
    with api.sessions() as session:
        for seq, (day, value) in enumerate([(27, 100.0), (28, 110.0), (29, 125.5)]):
            at = day_start(date(2026, 2, 1) + timedelta(days=day - 1), TZ) - timedelta(minutes=1)
            session.add(Reading(gateway_id=site.gateway_id, seq=900 + seq, meter_id=site.meter_id,
                                point="import_energy", value=value, unit="kWh", quality="good",
                                ts=at))  # fmt: skip
        session.commit()


async def test_daily_usage_by_billing_rules(api: Api) -> None:
    counted(api)
    meter = api.world.sites["P1"].meter_id
    got = await get(api, Role.MANAGER, f"/meters/{meter}/daily-usage", days=3, last="2026-02-28")
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["meter_id"], body["point"]) == (meter, "import_energy")
    assert [(d["day"], d["meter"]) for d in body["days"]] == [
        ("2026-02-26", None),  # no reading before the day began: a gap, not a zero
        ("2026-02-27", "10.0"),
        ("2026-02-28", "15.5"),
    ]
    spare = "m-P1-2"  # bound to no gateway: no counter yet
    quiet = (await get(api, Role.MAINTENANCE, f"/meters/{spare}/daily-usage")).json()
    assert (quiet["point"], quiet["days"]) == (None, [])


async def test_health_pages_the_callers_meters(api: Api) -> None:
    counted(api)
    p1 = api.world.sites["P1"]
    got = await get(api, Role.FRONT_DESK, "/meter-health", limit=1)
    assert got.status_code == 200, got.text
    first = got.json()
    assert len(first["items"]) == 1
    assert first["next_after"] is not None
    rest = (await get(api, Role.FRONT_DESK, "/meter-health", after=first["next_after"])).json()
    states = {m["id"]: m for m in first["items"] + rest["items"]}
    assert set(states) == {p1.meter_id, "m-P1-2"}  # P1's only: the front desk's scope
    assert states[p1.meter_id]["state"] == "silent"  # last reading a day before the clock
    assert states[p1.meter_id]["last_reading"].startswith("2026-02-28T15:59")
    assert states["m-P1-2"]["state"] == "unbound"
    water = await get(api, Role.FRONT_DESK, "/meter-health", utility="water")
    assert water.json()["items"] == []


async def test_another_organisations_meters_are_not_found(api: Api) -> None:
    other = api.world.sites["P3"]
    usage = await get(api, Role.ADMIN, f"/meters/{other.meter_id}/daily-usage")
    assert usage.status_code == 404
    listed = await get(api, Role.ADMIN, "/meter-health", property_id=other.property_id)
    assert listed.status_code == 404
    mine = (await get(api, Role.ADMIN, "/meter-health", limit=100)).json()["items"]
    assert other.property_id not in {m["property_id"] for m in mine}
    refused = await get(api, Role.TENANT, "/meter-health")
    assert refused.status_code == 403


async def test_daily_usage_refuses_spans_past_its_bounds(api: Api) -> None:
    counted(api)
    meter = api.world.sites["P1"].meter_id
    path = f"/meters/{meter}/daily-usage"
    for params in (
        {"days": 0},
        {"days": daily.MAX_DAYS + 1},  # more than the service counts: not silently fewer
        {"days": -1},
        {"last": "1999-12-31"},
        {"last": "2101-01-01"},
        {"last": "2026-02-30"},
    ):
        refused = await get(api, Role.MANAGER, path, **params)
        assert refused.status_code == 422, (params, refused.text)
    widest = await get(api, Role.MANAGER, path, days=daily.MAX_DAYS, last="2000-01-01")
    assert widest.status_code == 200, widest.text
    assert len(widest.json()["days"]) == daily.MAX_DAYS
    long_code = await get(api, Role.MANAGER, f"/meters/{'m' * 5000}/daily-usage")
    assert long_code.status_code == 404
