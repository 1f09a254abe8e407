"""Compiling a gateway's list from the records, versions, deltas, and what is sent."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.access import records, sync
from cloud.ingest.store import store_batch
from cloud.leases import service as leases
from cloud.leases.lifecycle import Action
from cloud.maintenance import orders
from cloud.models import (
    AccessListVersion,
    Door,
    DoorScope,
    GatewayAccess,
    Lease,
    LeaseStatus,
    OrderState,
    Property,
    Unit,
    WorkOrder,
)
from cloud.security.crypto import FieldKeys
from protocols.access import codes
from protocols.access.schema import AccessList, CredentialKind, apply
from protocols.access.signing import decode_signed
from protocols.mqtt import messages as msg
from tests.cloud.world import COMMAND_KEY, NOW, Site, build_world

TZ = ZoneInfo("Asia/Shanghai")
PUBLIC = COMMAND_KEY.public_key()


def add_door(session: Session, keys: FieldKeys, site: Site, code: str, name: str = "") -> Door:
    """A property gate on the site's gateway."""
    prop = session.get_one(Property, site.property_id)
    door = records.create_door(
        session, keys, prop, gateway_id=site.gateway_id, code=code, scope=DoorScope.PROPERTY,
        building_id=None, unit_id=None, name=name or code, now=NOW,
    )  # fmt: skip
    session.flush()
    return door


def add_doors(session: Session, keys: FieldKeys, site: Site) -> tuple[Door, Door]:
    prop = session.get_one(Property, site.property_id)
    unit = session.get_one(Unit, site.unit_id)
    own = records.create_door(
        session, keys, prop, gateway_id=site.gateway_id, code="unit-101", scope=DoorScope.UNIT,
        building_id=unit.building_id, unit_id=unit.id, name="101", now=NOW,
    )  # fmt: skip
    return own, add_door(session, keys, site, "gate", "Gate")


def sent(
    session: Session, keys: FieldKeys, gateway_id: str, now: datetime = NOW
) -> AccessList | None:
    out = sync.sync_all(session, keys, COMMAND_KEY, now=now, tz=TZ, gateway_ids=[gateway_id])
    assert len(out) <= 1
    return decode_signed(out[0].payload, PUBLIC, gateway_id=gateway_id) if out else None


@pytest.fixture
def world_p1(session: Session, keys: FieldKeys) -> Site:
    world = build_world(session, keys)
    p1 = world.sites["P1"]
    add_doors(session, keys, p1)
    records.set_pin(session, "582913", now=NOW, tenant_id=p1.tenant_id)
    return p1


def test_a_lease_compiles_to_rights_pins_and_door_secrets(
    session: Session, keys: FieldKeys, world_p1: Site
) -> None:
    access = sent(session, keys, world_p1.gateway_id)
    assert access is not None
    assert access.full
    assert [d.id for d in access.doors] == ["door-P1-101", "gate", "unit-101"]
    subject = f"tenant:{world_p1.tenant_id}"
    (right,) = [r for r in access.rights if r.subject == subject]
    assert right.doors == ["door-P1-101", "gate", "unit-101"]
    assert right.valid_from == datetime(2026, 1, 1, tzinfo=TZ)
    assert right.valid_until == datetime(2027, 1, 1, tzinfo=TZ)  # after 2026-12-31, local
    (pin,) = [c for c in access.credentials if c.subject == subject]
    assert pin.kind is CredentialKind.PIN
    assert pin.pin is not None
    assert pin.keypad_id
    # the staff of P1 (manager, front desk, maintenance) hold rights too, and the tenant's visitor
    assert {r.kind for r in access.rights} == {"lease", "staff", "visitor"}
    # the door's secret is the one the cloud issues offline codes from
    door = session.scalars(select(Door).where(Door.code == "gate")).one()
    secret = records.door_secret(keys, door)
    assert secret not in door.secret_enc
    assert access.doors[0].code_secret is not None
    window = codes.CodeWindow("gate", NOW, NOW + timedelta(hours=4), 0)
    code = codes.issue(secret, window, 9)
    assert codes.match(secret, "gate", 9, code, NOW + timedelta(hours=1)) == window


def test_unchanged_records_keep_the_version_and_a_change_is_a_delta(
    session: Session, keys: FieldKeys, world_p1: Site
) -> None:
    first = sent(session, keys, world_p1.gateway_id)
    assert first is not None
    assert first.version == 1
    sync.record_applied(session, world_p1.gateway_id, 1, NOW)
    assert sent(session, keys, world_p1.gateway_id) is None  # applied, and nothing new
    lease = session.get_one(Lease, world_p1.lease_id)
    leases.apply(session, lease, Action.ACTIVATE, today=date(2026, 3, 1), now=NOW)
    leases.apply(session, lease, Action.TERMINATE, today=date(2026, 3, 1), now=NOW,
                 terminated_on=date(2026, 3, 1), reason="moved out")  # fmt: skip
    assert lease.status is LeaseStatus.TERMINATED
    change = sent(session, keys, world_p1.gateway_id)
    assert change is not None
    assert change.base_version == 1
    assert change.version == 2
    subject = f"tenant:{world_p1.tenant_id}"
    assert change.removed.rights == [f"lease:{world_p1.lease_id}@{subject}"]
    assert change.removed.credentials == [f"{subject}:pin"]
    held = apply(first, change)
    assert subject not in {r.subject for r in held.rights}
    # kept sealed, for the next delta
    row = session.get_one(AccessListVersion, (world_p1.gateway_id, 2))
    assert b"tenant" not in row.body_enc


def test_a_list_not_applied_is_sent_again_later_and_whole_when_the_base_is_gone(
    session: Session, keys: FieldKeys, world_p1: Site
) -> None:
    assert sent(session, keys, world_p1.gateway_id) is not None
    assert sent(session, keys, world_p1.gateway_id, NOW + timedelta(seconds=5)) is None
    again = sent(session, keys, world_p1.gateway_id, NOW + sync.RESEND)
    assert again is not None
    assert again.full
    # a gateway restored from an old backup reports a version the cloud no longer keeps
    sync.record_applied(session, world_p1.gateway_id, 77, NOW)
    whole = sent(session, keys, world_p1.gateway_id, NOW + 2 * sync.RESEND)
    assert whole is not None
    assert whole.full
    assert whole.version == 78


def test_the_version_a_gateway_reports_in_its_state_is_its_applied_one(
    session: Session, keys: FieldKeys, world_p1: Site
) -> None:
    first = sent(session, keys, world_p1.gateway_id)
    assert first is not None
    state = msg.State(gateway_id=world_p1.gateway_id, seq=0, ts=NOW, online=True,
                      access_version=first.version)  # fmt: skip
    store_batch(session, [], [("t", state)], NOW)
    row = session.get_one(GatewayAccess, world_p1.gateway_id)
    assert row.applied_version == row.compiled_version == first.version
    assert sent(session, keys, world_p1.gateway_id, NOW + sync.RESEND) is None  # in sync


def test_the_worker_of_an_order_in_progress_opens_that_unit_until_it_leaves_progress(
    session: Session, keys: FieldKeys, world_p1: Site
) -> None:
    order = session.get_one(WorkOrder, world_p1.work_order_id)  # assigned to maintenance
    worker = f"user:{order.assignee_id}"
    first = sent(session, keys, world_p1.gateway_id)
    assert first is not None
    # without work in progress maintenance holds the entrances, not the tenant's door
    assert {d for r in first.rights if r.subject == worker for d in r.doors} == {"gate"}
    started = NOW + timedelta(hours=1)
    orders.step(session, order, OrderState.IN_PROGRESS, now=started, who=None)
    sync.record_applied(session, world_p1.gateway_id, first.version, NOW)
    change = sent(session, keys, world_p1.gateway_id, started)
    assert change is not None
    held = apply(first, change)
    (right,) = [r for r in held.rights if r.id == f"order:{order.id}@{worker}"]
    assert right.kind == "staff"
    assert right.doors == ["door-P1-101", "unit-101"]
    assert (right.valid_from, right.valid_until) == (started, datetime(2026, 3, 2, tzinfo=TZ))
    # waiting for parts: the right leaves the list
    orders.step(session, order, OrderState.WAITING_PARTS, now=started, who=None)
    sync.record_applied(session, world_p1.gateway_id, change.version, started)
    gone = sent(session, keys, world_p1.gateway_id, started + timedelta(minutes=1))
    assert gone is not None
    assert gone.removed.rights == [right.id]
    assert {d for r in apply(held, gone).rights if r.subject == worker for d in r.doors} == {"gate"}


def test_a_gateway_that_moves_to_another_version_than_the_one_sent_gets_it_again_at_once(
    session: Session, keys: FieldKeys, world_p1: Site
) -> None:
    """Back from an outage, it applied the first list queued for it and refused the newer ones
    (deltas on the base it held before): the newest is sent again on its new base, now."""
    first = sent(session, keys, world_p1.gateway_id)
    assert first is not None
    sync.record_applied(session, world_p1.gateway_id, first.version, NOW)
    records.set_pin(session, "602817", now=NOW, tenant_id=world_p1.tenant_id)
    second = sent(session, keys, world_p1.gateway_id)  # queued while it was away
    records.set_pin(session, "729164", now=NOW, tenant_id=world_p1.tenant_id)
    third = sent(session, keys, world_p1.gateway_id)  # queued too: a delta on `first`
    assert second is not None
    assert third is not None
    assert third.base_version == first.version
    soon = NOW + timedelta(seconds=1)
    assert sent(session, keys, world_p1.gateway_id, soon) is None  # it may be on its way
    sync.record_applied(session, world_p1.gateway_id, second.version, soon)
    again = sent(session, keys, world_p1.gateway_id, soon)
    assert again is not None
    assert (again.version, again.base_version) == (third.version, second.version)
    sync.record_applied(session, world_p1.gateway_id, again.version, soon)
    assert sent(session, keys, world_p1.gateway_id, soon + sync.RESEND) is None


def test_a_report_still_behind_after_the_send_gets_the_list_again_at_once(
    session: Session, keys: FieldKeys, world_p1: Site
) -> None:
    """Back on line through a broker that kept no queue for it: the gateway's report, made
    after the list was sent, still names the old version, so the list goes again at the next
    look rather than after `RESEND`; a report made before the send does not repeat it."""
    first = sent(session, keys, world_p1.gateway_id)
    assert first is not None
    sync.record_applied(session, world_p1.gateway_id, first.version, NOW)
    records.set_pin(session, "602817", now=NOW, tenant_id=world_p1.tenant_id)
    at = NOW + timedelta(seconds=2)
    second = sent(session, keys, world_p1.gateway_id, at)
    assert second is not None
    sync.record_applied(session, world_p1.gateway_id, first.version, at - timedelta(seconds=1))
    assert sent(session, keys, world_p1.gateway_id, at) is None  # that report crossed it
    sync.record_applied(session, world_p1.gateway_id, first.version, at)
    again = sent(session, keys, world_p1.gateway_id, at)
    assert again is not None
    assert (again.version, again.base_version) == (second.version, first.version)
    sync.record_applied(session, world_p1.gateway_id, again.version, at)
    assert sent(session, keys, world_p1.gateway_id, at + sync.RESEND) is None


def look(session: Session, keys: FieldKeys, now: datetime = NOW) -> tuple[set[str], set[str]]:
    """One look of the publisher: (gateways compiled, gateways sent a list)."""
    out, compiled = sync.sync_changed(session, keys, COMMAND_KEY, now=now, tz=TZ)
    return set(compiled), {o.gateway_id for o in out}


def applied(session: Session, *gateway_ids: str) -> None:
    for gateway_id in gateway_ids:
        row = session.get_one(GatewayAccess, gateway_id)
        sync.record_applied(session, gateway_id, row.compiled_version, NOW)


def test_a_look_compiles_only_the_gateways_whose_inputs_moved(
    session: Session, keys: FieldKeys, world_p1: Site
) -> None:
    everyone = {"gw-P1", "gw-P2", "gw-P3"}
    assert look(session, keys) == (everyone, everyone)  # a publisher's first look
    applied(session, "gw-P1", "gw-P3")  # gw-P2 does not answer
    assert look(session, keys) == (set(), set())  # nothing moved, nothing compiled
    lease = session.get_one(Lease, world_p1.lease_id)
    leases.apply(session, lease, Action.ACTIVATE, today=date(2026, 3, 1), now=NOW)
    leases.apply(session, lease, Action.TERMINATE, today=date(2026, 3, 1), now=NOW,
                 terminated_on=date(2026, 3, 1), reason="moved out")  # fmt: skip
    assert look(session, keys) == ({"gw-P1"}, {"gw-P1"})  # only P1's records moved
    applied(session, "gw-P1")
    # gw-P2 is behind: sent again after RESEND, without compiling anything
    assert look(session, keys, NOW + sync.RESEND) == (set(), {"gw-P2"})
    applied(session, "gw-P2")
    # time is an input too: at local midnight every staff window rolls
    assert look(session, keys, NOW + timedelta(days=1)) == (everyone, everyone)
    applied(session, *everyone)
    # the digests are kept with the gateways' rows: the next look, by this publisher or one
    # started after it (a restart), compiles nobody whose inputs did not move
    assert look(session, keys, NOW + timedelta(days=1)) == (set(), set())
    session.commit()
    assert {r.inputs_digest != "" for r in session.scalars(select(GatewayAccess))} == {True}
