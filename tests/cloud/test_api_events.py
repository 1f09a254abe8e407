"""A gateway's events through the API: scoped to its property, filtered by type, paged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cloud.models import Event, Role
from tests.cloud.conftest import Api
from tests.cloud.world import NOW


async def get(api: Api, role: Role, path: str, **params: Any) -> Any:
    return await api.client.get(f"/api/v1{path}", params=params, headers=api.as_role(role))


def add_events(api: Api, gateway_id: str, kinds: list[str]) -> None:
    with api.sessions.begin() as s:
        for seq, kind in enumerate(kinds, 1):
            data = {"door": "front", "verdict": "grant" if seq == 1 else "deny"}
            ts = NOW + timedelta(seconds=seq)
            s.add(Event(gateway_id=gateway_id, seq=seq, type=kind, source="door", ts=ts, data=data))


async def test_events_are_read_by_type_within_the_gateways_property(api: Api) -> None:
    add_events(api, "gw-P1", ["door.decision", "lock.event", "door.decision"])
    add_events(api, "gw-P3", ["door.decision"])
    page = (await get(api, Role.MANAGER, "/gateways/gw-P1/events", type="door.decision")).json()
    assert [(e["seq"], e["data"]["verdict"]) for e in page["items"]] == [(1, "grant"), (3, "deny")]
    assert page["next_after"] is None
    first = (await get(api, Role.MANAGER, "/gateways/gw-P1/events", limit=1)).json()
    assert [e["type"] for e in first["items"]] == ["door.decision"]
    rest = await get(api, Role.MANAGER, "/gateways/gw-P1/events", after=first["next_after"])
    assert [e["type"] for e in rest.json()["items"]] == ["lock.event", "door.decision"]
    # another organisation's gateway does not exist; read like the doors' own events
    assert (await get(api, Role.MANAGER, "/gateways/gw-P3/events")).status_code == 404
    assert (await get(api, Role.TENANT, "/gateways/gw-P1/events")).status_code == 403
    assert (await get(api, Role.MAINTENANCE, "/gateways/gw-P1/events")).status_code == 200
    bad = await get(api, Role.MANAGER, "/gateways/gw-P1/events", type="x" * 65)
    assert bad.status_code == 422
