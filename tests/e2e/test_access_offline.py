"""Seven days offline, on a driven clock: the gateway decides at its doors from the list it
held when the link was cut, and after the link returns the cloud knows all it decided.

The cloud is real (records, the publisher compiling and signing lists, ingest) on the test
broker and database; so is the gateway (access store, trusted clock, keypad entries deciding
and opening a lock, outbox, uplink) behind a relay the test cuts. Only time is driven: the
cloud's clock and the gateway's wall and monotonic clocks move when the test says, so a week
passes in seconds. Nobody tells the gateway anything during the outage: a lease ends, a
visitor pass opens and closes, a manager issues an offline code, NTP is lost and the wall
clock jumps back and forward; each decision must still be the right one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.access import records
from cloud.access.publisher import AccessPublisher
from cloud.leases import service as leases
from cloud.leases.lifecycle import Action
from cloud.models import (
    Building,
    Door,
    DoorScope,
    Event,
    GatewayAccess,
    Lease,
    LeaseStatus,
    OfflineCodeIssue,
    Organisation,
    PinCredential,
    Property,
    Role,
    Unit,
)
from cloud.people import new_tenant
from cloud.security.crypto import FieldKeys, generate_key
from edge.access.clock import GatewayClock
from edge.access.service import AccessService
from edge.access.store import AccessStore, load_or_create_key
from edge.door.keypad import keypad_entry
from edge.door.lock import SimulatedLock
from edge.store.outbox import Outbox
from edge.uplink.client import Uplink
from protocols.access.codes import CodeWindow
from protocols.access.decide import Code, Pin
from protocols.mqtt.url import parse_broker_url
from runtime.backoff import Backoff
from tests.cloud.world import COMMAND_KEY, add_user, cn_id
from tests.e2e.link_harness import SERVER_VARIANTS, Link, Relay, link_on, stop, utc, wait_until

pytestmark = pytest.mark.timeout(120)

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in the property's time zone
TZ = ZoneInfo("Asia/Shanghai")
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
PINS = {"ann": "582913", "bob": "640271", "cai": "319574"}
SETTLE_S = 30  # real seconds for the link to deliver what it holds
ARRIVAL_S = 10.0  # a change reaches an online gateway, and the cloud sees it applied, within


class Time:
    """True time (the cloud's and NTP's) and the gateway's clocks: the monotonic clock counts
    true seconds; the wall clock is true time plus `skew` (a jump), `synced` while NTP holds."""

    def __init__(self) -> None:
        self.true = T0
        self.skew = timedelta(0)
        self.synced = True

    def now(self) -> datetime:
        return self.true

    def wall(self) -> datetime:
        return self.true + self.skew

    def monotonic(self) -> float:
        return 1000.0 + (self.true - T0).total_seconds()

    def gateway(self) -> GatewayClock:
        return GatewayClock(
            self.wall,
            monotonic=self.monotonic,
            boot=lambda: "boot-1",
            ntp_synced=lambda: self.synced,
        )


@dataclass
class Building7:
    """Ids of the records: two doors (the building's entrance, the property's gate), three
    tenants with leases, a manager."""

    property_id: int
    entrance: int
    gate: int
    leases: dict[str, int]
    tenants: dict[str, int]
    manager: int


def lease_for(session: Session, keys: FieldKeys, unit: Unit, name: str, n: int, end: date) -> Lease:
    prop = session.get_one(Property, unit.property_id)
    tenant = new_tenant(session, keys, prop, name=name, id_number=cn_id(700 + n), now=T0)
    session.flush()
    terms = leases.Terms(start_date=date(2026, 1, 1), end_date=end, rent_fen=200000,
                         deposit_fen=200000)  # fmt: skip
    lease = leases.create_lease(session, unit, tenant.id, terms, T0)
    lease.status = LeaseStatus.SIGNED
    records.set_pin(session, PINS[name], now=T0, tenant_id=tenant.id)
    return lease


def build(session: Session, keys: FieldKeys, gateway_id: str) -> Building7:
    org = Organisation(name=f"Org {gateway_id}")
    session.add(org)
    session.flush()
    prop = Property(org_id=org.id, name="Week", city="Shenzhen")
    session.add(prop)
    session.flush()
    bld = Building(property_id=prop.id, name="Week-A", floors=6)
    session.add(bld)
    session.flush()
    units = [
        Unit(property_id=prop.id, building_id=bld.id, code=f"A-{n}", floor=1,
             area_m2=Decimal("40.00"), layout="1室1厅", base_rent_fen=200000)
        for n in (101, 102, 103)
    ]  # fmt: skip
    session.add_all(units)
    session.flush()
    ends = {"ann": date(2026, 3, 3), "bob": date(2026, 12, 31), "cai": date(2026, 12, 31)}
    made = {
        name: lease_for(session, keys, unit, name, n, ends[name])
        for n, (name, unit) in enumerate(zip(ends, units, strict=True))
    }
    entrance = records.create_door(
        session, keys, prop, gateway_id=gateway_id, code="entrance", scope=DoorScope.BUILDING,
        building_id=bld.id, unit_id=None, name="Entrance", now=T0,
    )  # fmt: skip
    gate = records.create_door(
        session, keys, prop, gateway_id=gateway_id, code="gate", scope=DoorScope.PROPERTY,
        building_id=None, unit_id=None, name="Gate", now=T0,
    )  # fmt: skip
    manager = add_user(session, org, f"mgr-{gateway_id}", Role.MANAGER, [prop.id])
    session.flush()
    return Building7(
        prop.id, entrance.id, gate.id,
        leases={name: lease.id for name, lease in made.items()},
        tenants={name: lease.primary_tenant_id for name, lease in made.items()},
        manager=manager.id,
    )  # fmt: skip


class Recorded:
    """The outbox, and every record the gateway wrote to it, in order: what the cloud must
    end up holding."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.records: list[tuple[int, dict[str, Any]]] = []

    def append(self, kind: str, payloads: list[dict[str, object]]) -> list[int]:
        seqs = self.outbox.append(kind, payloads)
        self.records.extend(zip(seqs, [dict(p) for p in payloads], strict=True))
        return seqs


@dataclass
class Gateway:
    access: AccessService
    uplink: Uplink
    recorded: Recorded
    locks: dict[str, SimulatedLock]

    async def enter(self, door: str, entered: Pin | Code) -> tuple[bool, str]:
        decision = await keypad_entry(self.access, self.locks[door], door, entered, hold_s=5)
        return decision.granted, str(decision.reason)

    def subjects(self) -> set[str]:
        index = self.access.index
        return set() if index is None else {r.subject for r in index.list.rights}


@contextlib.asynccontextmanager
async def gateway(link: Link, relay: Relay, time: Time) -> AsyncIterator[Gateway]:
    """The gateway's pipeline as `run_gateway` builds it, on the driven clocks and the relay."""
    config = link.config.model_copy(
        update={"mqtt": link.config.mqtt.model_copy(update={"url": relay.url})}
    )
    outbox = Outbox(config.store.path)
    store = AccessStore(config.store.path, load_or_create_key(link.tmp_path / "access.key"))
    recorded = Recorded(outbox)
    access = AccessService(
        config.gateway_id, COMMAND_KEY.public_key(), store, recorded, time.gateway()
    )
    uplink = Uplink(config, outbox, now=time.wall, access=access, backoff=Backoff(cap=0.5))
    access.on_stored, access.on_applied = uplink.notify, uplink.report_state
    tasks = [
        asyncio.create_task(uplink.run(), name="uplink"),
        asyncio.create_task(access.run(), name="access"),
    ]
    try:
        yield Gateway(access, uplink, recorded, {d: SimulatedLock(d) for d in ("entrance", "gate")})
    finally:
        for task in reversed(tasks):
            await stop(task)
        outbox.close()
        store.close()


def sync_row(link: Link) -> tuple[int, int]:
    """(compiled, applied) versions as the cloud's sync view shows them."""
    with link.sessions() as session:
        row = session.get(GatewayAccess, link.gateway_id)
        return (0, 0) if row is None else (row.compiled_version, row.applied_version)


def door_events(link: Link, door_id: int) -> list[tuple[int, str, str | None, str | None]]:
    """What the cloud shows for a door (`GET /doors/{id}/events`' query), oldest first."""
    with link.sessions() as session:
        door = session.get_one(Door, door_id)
        rows = session.scalars(
            select(Event)
            .where(Event.gateway_id == door.gateway_id, Event.source == door.code)
            .order_by(Event.seq)
        ).all()
        return [(e.seq, e.type, e.data.get("subject"), e.data.get("reason")) for e in rows]


@pytest.mark.timeout(120)
async def test_seven_days_offline_decided_right_and_reported_once(tmp_path: Path) -> None:
    keys = FieldKeys(current="k1", keys={"k1": generate_key()}, index_key=generate_key())
    time = Time()
    async with (
        link_on(SERVER_VARIANTS[-1], tmp_path, link={"state_interval_s": 60.0}) as link,
        contextlib.AsyncExitStack() as stack,
    ):
        with link.sessions.begin() as session:
            world = build(session, keys, link.gateway_id)
        relay = Relay(parse_broker_url(link.mqtt_url).port)
        stack.push_async_callback(relay.close)
        await relay.up()
        worker = await stack.enter_async_context(link.ingest())
        assert worker is not None
        publisher = AccessPublisher(
            link.settings(), link.sessions, keys, lambda: COMMAND_KEY, tz=TZ, now=time.now
        )
        publishing = asyncio.create_task(publisher.run(), name="publisher")
        stack.push_async_callback(stop, publishing)
        gw = await stack.enter_async_context(gateway(link, relay, time))

        async def in_sync() -> bool:
            compiled, applied = sync_row(link)
            return compiled > 0 and applied == compiled == gw.access.version

        # ---- online: the list arrives; bob opens, then his lease is terminated ----------
        await wait_until(in_sync, SETTLE_S, "the first list applied and reported")
        assert {"tenant:" + str(world.tenants[n]) for n in PINS} <= gw.subjects()
        bob = Pin(keypad_of(link, world.tenants["bob"]), PINS["bob"])
        assert await gw.enter("entrance", bob) == (True, "granted")
        first = gw.access.version
        with link.sessions.begin() as session:
            prop = session.get_one(Property, world.property_id)
            visit, pass_code = records.issue_pass(
                session, prop, [world.entrance], visitor_name="访客",
                valid_from=T0 + 2 * DAY, valid_until=T0 + 2 * DAY + 4 * HOUR, max_uses=2,
                user_id=world.manager, tenant_id=None, now=T0,
            )  # fmt: skip
            visitor = Pin(records.keypad_id(visit), pass_code)
            lease = session.get_one(Lease, world.leases["bob"])
            leases.apply(session, lease, Action.ACTIVATE, today=date(2026, 3, 1), now=T0)
            leases.apply(session, lease, Action.TERMINATE, today=date(2026, 3, 1), now=T0,
                         terminated_on=date(2026, 3, 1), reason="evicted")  # fmt: skip
        # Nobody wakes the publisher: it notices, and the gateway reports, within ARRIVAL_S.

        async def changed() -> bool:
            held = gw.subjects()
            return (
                await in_sync()
                and f"tenant:{world.tenants['bob']}" not in held
                and f"pass:{visit.id}" in held
            )

        await wait_until(changed, ARRIVAL_S, "the termination and the pass applied and reported")
        assert (gw.access.version or 0) > (first or 0) > 0

        # ---- the link is cut; a week passes on the driven clocks ----------------------------
        await relay.down()
        ann = Pin(keypad_of(link, world.tenants["ann"]), PINS["ann"])
        cai = Pin(keypad_of(link, world.tenants["cai"]), PINS["cai"])
        await entries(time, gw, [
            (HOUR, "entrance", bob, False, "unknown_credential"),  # revoked before the cut
            (DAY, "entrance", ann, True, "granted"),
            (2 * DAY - HOUR, "entrance", visitor, False, "not_yet"),
            (2 * DAY + HOUR, "entrance", visitor, True, "granted"),
            (2 * DAY + 2 * HOUR, "entrance", visitor, True, "granted"),
            (2 * DAY + 3 * HOUR, "entrance", visitor, False, "used_up"),  # 2 uses
            (2 * DAY + 5 * HOUR, "entrance", visitor, False, "expired"),
            (3 * DAY, "entrance", ann, False, "expired"),  # her lease ended 03-03, local time
        ])  # fmt: skip

        # A manager issues an offline code for the gate while the building is offline.
        with link.sessions.begin() as session:
            gate = session.get_one(Door, world.gate)
            issued, code_text = records.issue_offline_code(
                session, keys, gate, start=T0 + 4 * DAY, hours=4, issued_by="manager",
                now=time.now(),
            )  # fmt: skip
        code = Code(code_text)
        await entries(time, gw, [
            (4 * DAY - HOUR, "gate", code, False, "wrong_code"),  # before its window
            (4 * DAY + HOUR, "gate", code, True, "granted"),
            (4 * DAY + 2 * HOUR, "gate", code, False, "code_used"),  # it opens once
            (4 * DAY + 5 * HOUR, "gate", code, False, "wrong_code"),  # after its window
        ])  # fmt: skip

        # NTP is lost; the wall clock jumps back into ann's lease, then 10 years ahead.
        time.synced, time.skew = False, -4 * DAY
        await entries(time, gw, [
            (5 * DAY, "entrance", ann, False, "expired"),
            (5 * DAY + HOUR, "gate", cai, True, "granted"),
        ])  # fmt: skip
        time.skew = timedelta(days=3650)
        await entries(time, gw, [
            (5 * DAY + 2 * HOUR, "entrance", cai, True, "granted"),
            (5 * DAY + 3 * HOUR, "gate", ann, False, "expired"),
            (5 * DAY + 4 * HOUR, "entrance", visitor, False, "expired"),
        ])  # fmt: skip

        # ---- day 7: NTP and the link return ------------------------------------------------
        time.synced, time.skew = True, timedelta(0)
        await entries(time, gw, [(7 * DAY, "entrance", cai, True, "granted")])
        publisher.changed.set()
        await relay.up()

        async def all_home() -> bool:
            stats = await asyncio.to_thread(gw.recorded.outbox.stats)
            gone = f"tenant:{world.tenants['ann']}" not in gw.subjects()
            return stats.pending == 0 and gone and await in_sync()

        await wait_until(all_home, SETTLE_S, "the backlog stored and the new list applied")
        opened = {d: [r.person_id for r in lock.requests] for d, lock in gw.locks.items()}
        tenant = {name: f"tenant:{t}" for name, t in world.tenants.items()}
        assert opened == {
            "entrance": [tenant["bob"], tenant["ann"], f"pass:{visit.id}", f"pass:{visit.id}",
                         tenant["cai"], tenant["cai"]],
            "gate": [issued_code_id(issued), tenant["cai"]],
        }  # fmt: skip
        produced = [
            (seq, p["type"], p.get("source"), p.get("reason")) for seq, p in gw.recorded.records
        ]
        stored = [
            (seq, kind, source, data.get("reason"))
            for seq, kind, source, data in link.stored_events()
        ]
        assert stored == produced  # each once, in the gateway's order
        for door_id, code_name in ((world.entrance, "entrance"), (world.gate, "gate")):
            mine = [(s, p["type"], p.get("subject"), p.get("reason"))
                    for s, p in gw.recorded.records if p.get("source") == code_name]  # fmt: skip
            assert door_events(link, door_id) == mine


def keypad_of(link: Link, tenant_id: int) -> str:
    with link.sessions() as session:
        row = session.scalars(
            select(PinCredential).where(PinCredential.tenant_id == tenant_id)
        ).one()
        return records.keypad_id(row)


Entry = tuple[timedelta, str, Pin | Code, bool, str]


async def entries(time: Time, gw: Gateway, steps: list[Entry]) -> None:
    """At each T0 + offset (the clocks moved there), an entry at a door's keypad, and whether
    it opened and why, as expected."""
    decided, expected = [], []
    for offset, door, entered, granted, reason in steps:
        assert T0 + offset >= time.true
        time.true = T0 + offset
        decided.append((offset, door, *await gw.enter(door, entered)))
        expected.append((offset, door, granted, reason))
    assert decided == expected


def issued_code_id(issued: OfflineCodeIssue) -> str:
    return CodeWindow(issued.door_code, utc(issued.valid_from), utc(issued.valid_until),
                      issued.counter).id  # fmt: skip
