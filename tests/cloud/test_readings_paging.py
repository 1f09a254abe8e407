"""Readings page newest first on (ts, id): every point of a poll shares its timestamp, so a
cursor on ts alone would skip the rest of a poll at each page boundary."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from cloud.models import Reading, Role
from tests.cloud.conftest import Api
from tests.cloud.world import NOW


async def test_paging_returns_every_reading_once_when_polls_share_a_timestamp(api: Api) -> None:
    p1 = api.world.sites["P1"]
    with api.sessions.begin() as session:
        session.add_all(
            Reading(
                gateway_id=p1.gateway_id,
                seq=9000 + poll * 3 + n,
                meter_id=p1.meter_id,
                point=point,
                value=float(poll),
                unit="kWh",
                ts=NOW - timedelta(minutes=8 - poll),
            )
            for poll in range(8)
            for n, point in enumerate(("energy", "power", "voltage"))
        )
    with api.sessions() as session:
        mine = (Reading.meter_id == p1.meter_id) & (Reading.gateway_id == p1.gateway_id)
        newest = (Reading.ts.desc(), Reading.id.desc())
        stored = session.scalars(select(Reading.seq).where(mine).order_by(*newest)).all()
    assert len(stored) == 24
    headers = api.as_role(Role.ADMIN)
    url = f"/api/v1/meters/{p1.meter_id}/readings"
    seen: list[int] = []
    params: dict[str, str | int] = {"limit": 5}
    for _ in range(10):
        r = await api.client.get(url, params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 5
        seen += [x["seq"] for x in body["items"]]
        if body["next_after"] is None:
            break
        params = {"limit": 5, "after": body["next_after"]}
    assert seen == list(stored)


async def test_a_forged_cursor_is_a_problem(api: Api) -> None:
    p1 = api.world.sites["P1"]
    url = f"/api/v1/meters/{p1.meter_id}/readings"
    for bad in ("not-a-cursor", "MjAyNnwx", "%%%"):
        r = await api.client.get(url, params={"after": bad}, headers=api.as_role(Role.ADMIN))
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
