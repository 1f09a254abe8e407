"""Spare parts through the API and the service, on SQLite and PostgreSQL: stock per store,
issues and returns on an order, never below zero (also for two people taking the last unit at
once), the low-stock alarm, and the repair charged as one line of the tenant's next bill."""

from __future__ import annotations

import threading
import time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.billing.service.repairs import repair_key
from cloud.billing.service.runs import run_billing
from cloud.db import make_engine, make_sessionmaker
from cloud.maintenance import parts
from cloud.models import (
    Alarm,
    AlarmState,
    InvoiceLine,
    LineKind,
    PartMovement,
    PartStock,
    Role,
    SparePart,
    WorkOrder,
)
from cloud.security.authz import Principal
from cloud.security.crypto import FieldKeys
from tests.cloud.conftest import Api
from tests.cloud.world import NOW, build_world

PREFIX = "/api/v1"
TZ = ZoneInfo("Asia/Shanghai")


def low_alarms(api: Api) -> list[Alarm]:
    with api.sessions() as s:
        return list(s.scalars(select(Alarm).where(Alarm.kind == parts.LOW_STOCK)))


async def test_parts_go_to_an_order_and_its_repair_is_billed_once(api: Api) -> None:
    c, p1 = api.client, api.world.sites["P1"]
    worker, finance = api.as_role(Role.MAINTENANCE), api.as_role(Role.FINANCE)
    order_url = f"{PREFIX}/work-orders/{p1.work_order_id}"
    stock = (await c.get(f"{PREFIX}/part-stock?property_id={p1.property_id}",
                         headers=worker)).json()["items"]  # fmt: skip
    assert [(s["code"], s["quantity"], s["low"]) for s in stock] == [
        (f"VALVE-{p1.property_id}", 5, False)
    ]
    took = await c.post(f"{order_url}/parts", json={"part_id": p1.part_id, "quantity": 4},
                        headers=worker)  # fmt: skip
    assert took.status_code == 201, took.text
    assert took.json()["parts_fen"] == 4 * 1850
    # one left, under the reorder level of 2: the store's alarm is raised, once
    (alarm,) = low_alarms(api)
    assert (alarm.state, alarm.key, alarm.property_id) == (
        AlarmState.ACTIVE, f"VALVE-{p1.property_id}@{p1.property_id}", p1.property_id
    )  # fmt: skip
    more = await c.post(f"{order_url}/parts", json={"part_id": p1.part_id, "quantity": 2},
                        headers=worker)  # fmt: skip
    assert more.status_code == 409
    assert "only 1" in more.json()["detail"]
    give_back = {"part_id": p1.part_id, "action": "return"}
    back = await c.post(f"{order_url}/parts", json={**give_back, "quantity": 1}, headers=worker)
    assert back.json()["parts_fen"] == 3 * 1850
    (alarm,) = low_alarms(api)
    assert alarm.state is AlarmState.RESOLVED  # back at the reorder level: cleared by itself
    too_many = await c.post(f"{order_url}/parts", json={**give_back, "quantity": 4},
                            headers=worker)  # fmt: skip
    assert too_many.status_code == 409  # only 3 are out on the order

    # charged once the work is done; the tenant's next bill carries it
    early = await c.post(f"{order_url}/charge", json={"labour_fen": 12000}, headers=finance)
    assert early.status_code == 409
    for state in ("in_progress", "done"):
        r = await c.post(f"{order_url}/progress", json={"state": state}, headers=worker)
        assert r.status_code == 200, r.text
    charged = (await c.post(f"{order_url}/charge", json={"labour_fen": 12000},
                            headers=finance)).json()  # fmt: skip
    assert (charged["total_fen"], charged["lease_id"], charged["invoiced"]) == (
        3 * 1850 + 12000, p1.lease_id, False
    )  # fmt: skip
    with api.sessions() as s:
        for _ in range(2):  # a second run bills nothing twice
            run_billing(s, p1.property_id, "2026-04", now=NOW, tz=TZ)
            s.commit()
        (line,) = s.scalars(select(InvoiceLine).where(InvoiceLine.kind == LineKind.ADJUSTMENT))
        assert (line.lease_id, line.meter_key, line.amount_fen) == (
            p1.lease_id, repair_key(p1.work_order_id), 17550
        )  # fmt: skip
        assert line.detail == {"work_order_id": p1.work_order_id, "parts_fen": 5550,
                               "labour_fen": 12000}  # fmt: skip
    seen = (await c.get(f"{order_url}/charge", headers=api.as_role(Role.TENANT))).json()
    assert (seen["total_fen"], seen["invoiced"]) == (17550, True)
    again = await c.post(f"{order_url}/charge", json={"labour_fen": 1}, headers=finance)
    assert again.status_code == 409


async def test_parts_stay_in_their_organisation_and_stores(api: Api) -> None:
    c, p1, p3 = api.client, api.world.sites["P1"], api.world.sites["P3"]
    manager = api.as_role(Role.MANAGER)
    theirs = {"part_id": p3.part_id, "quantity": 1}
    foreign = await c.post(f"{PREFIX}/work-orders/{p1.work_order_id}/parts", json=theirs,
                           headers=manager)  # fmt: skip
    assert foreign.status_code == 404  # another organisation's part
    into_p1 = {"property_id": p1.property_id, "quantity": 1}
    r = await c.post(f"{PREFIX}/parts/{p3.part_id}/receipts", json=into_p1, headers=manager)
    assert r.status_code == 404
    huge = {**into_p1, "quantity": 10**6}
    r = await c.post(f"{PREFIX}/parts/{p1.part_id}/receipts", json=huge, headers=manager)
    assert r.status_code == 422  # bounded
    made = await c.post(f"{PREFIX}/parts", headers=manager,
                        json={"code": "VALVE-x\x00", "name": "valve"})  # fmt: skip
    assert made.status_code == 422


def test_the_store_cannot_go_below_zero(session: Session, keys: FieldKeys) -> None:
    world = build_world(session, keys)
    p1 = world.sites["P1"]
    with pytest.raises(IntegrityError):
        session.execute(
            update(PartStock).where(PartStock.part_id == p1.part_id).values(quantity=-1)
        )


@pytest.mark.timeout(60)
def test_two_people_taking_the_last_unit_at_once_get_it_once(
    database_url: str, keys: FieldKeys
) -> None:
    """Two sessions issue the last unit together; on PostgreSQL the second waits on the
    first's row lock and, once it commits, finds nothing left."""
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    try:
        with sessions() as s:
            world = build_world(s, keys)
            p1 = world.sites["P1"]
            s.execute(update(PartStock).where(PartStock.part_id == p1.part_id).values(quantity=1))
            s.commit()
        who = Principal(world.users[Role.MANAGER], "user-manager", Role.MANAGER, p1.org_id,
                        frozenset({p1.property_id}), None, "127.0.0.1")  # fmt: skip
        outcomes: list[str] = []

        def take(s: Session) -> None:
            order = s.get_one(WorkOrder, p1.work_order_id)
            part = s.get_one(SparePart, p1.part_id)
            try:
                parts.to_order(s, order, part, 1, returning=False, now=NOW, who=who)
            except parts.PartsError as exc:
                outcomes.append(str(exc))
                s.rollback()
                return
            s.commit()
            outcomes.append("took it")

        first, second = sessions(), sessions()
        try:
            order = first.get_one(WorkOrder, p1.work_order_id)
            part = first.get_one(SparePart, p1.part_id)
            parts.to_order(first, order, part, 1, returning=False, now=NOW, who=who)
            outcomes.append("took it")  # and holds its row lock until it commits
            other = threading.Thread(target=take, args=(second,))
            other.start()
            if engine.dialect.name == "postgresql":
                wait_for_a_lock_wait(engine)
            first.commit()
            other.join(30)
            assert not other.is_alive()
        finally:
            first.close()
            second.close()
        refused = f"only 0 pcs of VALVE-{p1.property_id} in the store"
        assert sorted(outcomes) == [refused, "took it"]
        with sessions() as s:
            assert parts.on_hand(s, p1.part_id, p1.property_id) == 0
            kinds = s.scalars(select(PartMovement.kind).where(PartMovement.part_id == p1.part_id))
            assert list(kinds) == ["issue"]
    finally:
        engine.dispose()


def wait_for_a_lock_wait(engine: Engine) -> None:
    """Until another backend waits on a lock (bounded): the race is then really on."""
    probe = engine.connect()
    try:
        for _ in range(400):
            waiting = probe.execute(
                text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            ).scalar_one()
            if waiting:
                return
            time.sleep(0.025)  # waiting on another process's state: no clock to drive
        pytest.fail("the second issue never waited on the first's lock")
    finally:
        probe.close()


async def test_the_stock_pages_and_filters_on_the_server(api: Api) -> None:
    c, p1 = api.client, api.world.sites["P1"]
    manager = api.as_role(Role.MANAGER)
    for code, quantity in (("AAA-1", 1), ("ZZZ-1", 9)):
        part = {"code": code, "name": code, "reorder_level": 3}
        made = await c.post(f"{PREFIX}/parts", json=part, headers=manager)
        assert made.status_code == 201, made.text
        got = await c.post(f"{PREFIX}/parts/{made.json()['id']}/receipts",
                           json={"property_id": p1.property_id, "quantity": quantity},
                           headers=manager)  # fmt: skip
        assert got.status_code == 201, got.text
    url = f"{PREFIX}/part-stock?property_id={p1.property_id}"
    codes, after = [], ""
    for _ in range(4):
        page = (await c.get(f"{url}&limit=2{after}", headers=manager)).json()
        codes += [s["code"] for s in page["items"]]
        if page["next_after"] is None:
            break
        after = f"&after={page['next_after']}"
    assert sorted(codes) == ["AAA-1", f"VALVE-{p1.property_id}", "ZZZ-1"]
    assert len(codes) == 3  # each row once across the pages
    low = (await c.get(f"{url}&low=true", headers=manager)).json()["items"]
    assert [(s["code"], s["low"]) for s in low] == [("AAA-1", True)]
    bad = await c.get(f"{url}&after=nonsense", headers=manager)
    assert bad.status_code == 422
    for prop in ("99999999999999999999", str(2**31)):  # past any id: past every database's int
        huge = await c.get(f"{url}&after={prop}:AAA-1", headers=manager)
        assert huge.status_code == 422, huge.text
