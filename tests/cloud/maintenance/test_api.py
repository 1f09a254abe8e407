"""Work orders and alarms through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json

from sqlalchemy import select

from cloud.models import AlarmSubscription, AuditEvent, Organisation, Role
from tests.cloud.conftest import Api
from tests.cloud.world import PNG, add_user

PREFIX = "/api/v1"


def b64(data: bytes) -> dict[str, str]:
    return {"data": base64.b64encode(data).decode()}


async def test_a_tenant_reports_a_fault_and_it_is_repaired(api: Api) -> None:
    c, w = api.client, api.world
    p1, p2 = w.sites["P1"], w.sites["P2"]
    tenant, manager, worker = (
        api.as_role(r) for r in (Role.TENANT, Role.MANAGER, Role.MAINTENANCE)
    )
    body = {"unit_id": p1.unit_id, "category": "plumbing", "priority": "high",
            "description": "water under the sink"}  # fmt: skip
    r = await c.post(f"{PREFIX}/work-orders", json=body, headers=tenant)
    assert r.status_code == 201, r.text
    order = r.json()
    assert (order["state"], order["source"], order["tenant_id"]) == ("new", "tenant", p1.tenant_id)
    assert order["response_due"] < order["resolution_due"]
    oid = order["id"]
    # not someone else's unit, nor a common area
    other = await c.post(f"{PREFIX}/work-orders", json={**body, "unit_id": p2.unit_id},
                         headers=tenant)  # fmt: skip
    assert other.status_code == 404
    common = {**body, "unit_id": None, "property_id": p1.property_id, "area": "lobby"}
    assert (await c.post(f"{PREFIX}/work-orders", json=common, headers=tenant)).status_code == 422
    # a photo, told by its bytes
    r = await c.post(f"{PREFIX}/work-orders/{oid}/photos", json=b64(PNG), headers=tenant)
    assert r.status_code == 201
    photo_id = r.json()["photo_ids"][0]
    r = await c.get(f"{PREFIX}/work-orders/{oid}/photos/{photo_id}", headers=worker)
    assert (r.content, r.headers["content-type"]) == (PNG, "image/png")
    assert r.headers["x-content-type-options"] == "nosniff"
    # the worker may not start before it is theirs; the manager assigns
    step = f"{PREFIX}/work-orders/{oid}/progress"
    assert (await c.post(step, json={"state": "in_progress"}, headers=worker)).status_code == 403
    me = w.users[Role.MAINTENANCE]
    r = await c.post(f"{PREFIX}/work-orders/{oid}/assignment", json={"assignee_id": me},
                     headers=manager)  # fmt: skip
    assert r.json()["state"] == "assigned"
    assert r.json()["responded_at"] is not None
    for state in ("in_progress", "waiting_parts", "in_progress", "done"):
        r = await c.post(step, json={"state": state}, headers=worker)
        assert r.json()["state"] == state, r.text
    # the tenant reopens, it is done again, they confirm and rate
    confirm = f"{PREFIX}/work-orders/{oid}/confirmation"
    assert (await c.post(confirm, json={"action": "reopen"}, headers=tenant)).json()[
        "state"] == "reopened"  # fmt: skip
    assert (await c.post(step, json={"state": "done"}, headers=worker)).status_code == 409
    for state in ("in_progress", "done"):
        await c.post(step, json={"state": state}, headers=worker)
    assert (await c.post(confirm, json={"action": "confirm"}, headers=tenant)).json()[
        "state"] == "confirmed"  # fmt: skip
    r = await c.post(f"{PREFIX}/work-orders/{oid}/rating", json={"rating": 6}, headers=tenant)
    assert r.status_code == 422
    r = await c.post(f"{PREFIX}/work-orders/{oid}/rating", json={"rating": 5, "comment": "快"},
                     headers=tenant)  # fmt: skip
    assert (r.json()["rating"], r.json()["rating_comment"]) == (5, "快")
    figures = (await c.get(f"{PREFIX}/work-order-figures", headers=manager)).json()["items"]
    mine = [f for f in figures if f["by"] == "worker" and f["key"] == str(me)]
    assert mine[0]["rated"] >= 1
    with api.sessions() as s:
        mine_only = (AuditEvent.target_type == "work_order", AuditEvent.target_id == str(oid))
        actions = s.scalars(select(AuditEvent.action).where(*mine_only)).all()
    assert actions.count("work_order.in_progress") == 3
    assert "work_order.confirmed" in actions


async def test_photos_are_checked_by_their_bytes_and_bounded(api: Api) -> None:
    c, p1 = api.client, api.world.sites["P1"]
    tenant = api.as_role(Role.TENANT)
    url = f"{PREFIX}/work-orders/{p1.work_order_id}/photos"
    html = b"<html><script>alert(1)</script></html>"
    assert (await c.post(url, json=b64(html), headers=tenant)).status_code == 422
    assert (await c.post(url, json={"data": "not base64!"}, headers=tenant)).status_code == 422
    big = b"\xff\xd8\xff" + bytes(2 * 1024 * 1024)
    assert (await c.post(url, json=b64(big), headers=tenant)).status_code == 422
    for _ in range(5):  # the world's order holds one already
        assert (await c.post(url, json=b64(PNG), headers=tenant)).status_code == 201
    assert (await c.post(url, json=b64(PNG), headers=tenant)).status_code == 409
    # another order's photo is not reachable through this order
    other = f"{PREFIX}/work-orders/{p1.done_order_id}/photos/{p1.photo_id}"
    assert (await c.get(other, headers=tenant)).status_code == 404


async def test_assignment_only_to_workers_of_that_property(api: Api) -> None:
    c, w = api.client, api.world
    p1, p2, p3 = w.sites["P1"], w.sites["P2"], w.sites["P3"]
    url = f"{PREFIX}/work-orders/{p1.work_order_id}/assignment"
    manager = api.as_role(Role.MANAGER)
    for user in (p2.user_id, p3.user_id, w.users[Role.FINANCE], w.users[Role.TENANT]):
        r = await c.post(url, json={"assignee_id": user}, headers=manager)
        assert r.status_code == 422, (user, r.text)
    with api.sessions() as s:
        org = s.get_one(Organisation, p1.org_id)
        gone = add_user(s, org, "left-the-job", Role.MAINTENANCE, [p1.property_id])
        gone.active = False
        s.commit()
        gone_id = gone.id
    assert (await c.post(url, json={"assignee_id": gone_id}, headers=manager)).status_code == 422


async def test_orders_page_newest_first(api: Api) -> None:
    c, p1 = api.client, api.world.sites["P1"]
    tenant = api.as_role(Role.TENANT)
    made = []
    for n in range(3):
        body = {"unit_id": p1.unit_id, "category": "other", "description": f"fault {n}"}
        made.append((await c.post(f"{PREFIX}/work-orders", json=body, headers=tenant)).json()["id"])
    seen: list[int] = []
    after = None
    while True:
        q = f"{PREFIX}/work-orders?limit=2" + (f"&after={after}" if after else "")
        page = (await c.get(q, headers=tenant)).json()
        seen += [o["id"] for o in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen[:3] == sorted(made, reverse=True)
    assert len(seen) == len(set(seen)) == 5  # and the world's two
    assert (await c.get(f"{PREFIX}/work-orders?after=bogus", headers=tenant)).status_code == 422


async def test_alarms_are_acknowledged_then_resolved(api: Api) -> None:
    c, p1 = api.client, api.world.sites["P1"]
    worker = api.as_role(Role.MAINTENANCE)
    listed = (await c.get(f"{PREFIX}/alarms?state=active", headers=worker)).json()["items"]
    assert [a["id"] for a in listed] == [p1.alarm_id]
    ack = f"{PREFIX}/alarms/{p1.alarm_id}/acknowledgement"
    assert (await c.post(ack, headers=worker)).json()["state"] == "acknowledged"
    assert (await c.post(ack, headers=worker)).status_code == 409
    done = await c.post(f"{PREFIX}/alarms/{p1.alarm_id}/resolution", headers=worker)
    assert done.json()["state"] == "resolved"
    assert done.json()["resolved_by"] is not None
    assert (await c.get(f"{PREFIX}/alarms?state=active", headers=worker)).json()["items"] == []


async def test_an_order_on_an_asset_under_warranty_says_so(api: Api) -> None:
    c, w = api.client, api.world
    p1, p2 = w.sites["P1"], w.sites["P2"]
    manager, tenant = api.as_role(Role.MANAGER), api.as_role(Role.TENANT)
    new = {"property_id": p1.property_id, "unit_id": p1.unit_id, "kind": "lock",
           "name": "front door", "vendor": "TTLock", "warranty_end": "2026-02-01"}  # fmt: skip
    old = (await c.post(f"{PREFIX}/assets", json=new, headers=manager)).json()
    listed = (await c.get(f"{PREFIX}/assets?unit_id={p1.unit_id}", headers=manager)).json()
    heater = next(a for a in listed["items"] if a["name"] == "water heater")
    body = {"unit_id": p1.unit_id, "category": "appliance", "description": "no hot water"}
    for asset, covered in ((heater, True), (old, False)):
        r = await c.post(f"{PREFIX}/work-orders", json={**body, "asset_id": asset["id"]},
                         headers=tenant)  # fmt: skip
        assert r.json()["under_warranty"] is covered, r.text
    # another unit's (or property's) asset is not one to name
    foreign = {**new, "property_id": p2.property_id, "unit_id": p1.unit_id}
    assert (await c.post(f"{PREFIX}/assets", json=foreign, headers=api.as_role(Role.ADMIN))
            ).status_code == 404  # fmt: skip


async def test_subscriptions_are_ones_own_and_dead_letters_are_retried(api: Api) -> None:
    c, w = api.client, api.world
    p1, p3 = w.sites["P1"], w.sites["P3"]
    manager = api.as_role(Role.MANAGER)
    url = f"{PREFIX}/alarm-subscriptions"
    for target in ("file:///etc/passwd", "http://robot.test/\x00", "ftp://robot.test/x",
                   "http://robot.test/send", "https://169.254.169.254/latest"):  # fmt: skip
        bad = await c.post(url, json={"channel": "wecom", "target": target}, headers=manager)
        assert bad.status_code == 422, target
    body = {"channel": "dingtalk", "target": "https://oapi.dingtalk.com/robot/send?access_token=t",
            "secret": "SEC1", "kinds": ["door_forced", "door_forced"]}  # fmt: skip
    made = (await c.post(url, json=body, headers=manager)).json()
    assert (made["has_secret"], made["kinds"]) == (True, ["door_forced"])
    assert "SEC1" not in json.dumps(made)
    with api.sessions() as s:
        sealed = s.get_one(AlarmSubscription, made["id"]).secret_enc
    assert sealed is not None
    assert b"SEC1" not in sealed  # sealed at rest
    assert [s["id"] for s in (await c.get(url, headers=manager)).json()["items"]] == [made["id"]]
    with api.sessions() as s:
        foreign = s.scalars(
            select(AlarmSubscription.id).where(AlarmSubscription.user_id == p3.user_id)
        ).one()
    assert (await c.delete(f"{url}/{foreign}", headers=manager)).status_code == 204
    with api.sessions() as s:
        assert s.get(AlarmSubscription, foreign) is not None  # someone else's: untouched

    dead = (await c.get(f"{PREFIX}/alarm-deliveries", headers=manager)).json()["items"]
    assert [d["id"] for d in dead] == [p1.delivery_id]
    retry = f"{PREFIX}/alarm-deliveries/{p1.delivery_id}/retry"
    again = (await c.post(retry, headers=manager)).json()
    assert (again["state"], again["attempts"]) == ("pending", 0)
    assert (await c.post(retry, headers=manager)).status_code == 409
    other = await c.post(f"{PREFIX}/alarm-deliveries/{p3.delivery_id}/retry", headers=manager)
    assert other.status_code == 404
    assert (await c.get(f"{PREFIX}/alarm-deliveries", headers=manager)).json()["items"] == []
