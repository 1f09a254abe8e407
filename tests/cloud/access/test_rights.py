"""Rights follow the records: leases, staff roles and visitor passes → grants per door."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from cloud.access.rights import (
    STAFF_DAYS,
    DoorFacts,
    Grant,
    LeaseFacts,
    PassFacts,
    StaffFacts,
    WorkFacts,
    covers,
    rights,
)
from cloud.models import DoorScope, LeaseStatus, Role

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
# Property 1: building 10 with units 100 and 101; building 11 with unit 110. Property 2 apart.
DOORS = [
    DoorFacts(1, 1, None, None, DoorScope.PROPERTY),
    DoorFacts(2, 1, 10, None, DoorScope.BUILDING),
    DoorFacts(3, 1, 10, 100, DoorScope.UNIT),
    DoorFacts(4, 1, 10, 101, DoorScope.UNIT),
    DoorFacts(5, 1, 11, None, DoorScope.BUILDING),
    DoorFacts(6, 1, 11, 110, DoorScope.UNIT),
    DoorFacts(7, 2, None, None, DoorScope.PROPERTY),
]
LEASE = LeaseFacts(
    id=50,
    property_id=1,
    building_id=10,
    unit_id=100,
    status=LeaseStatus.ACTIVE,
    start_date=date(2026, 1, 1),
    end_date=date(2026, 6, 30),
    tenant_ids=frozenset({8, 9}),
)


def grants_of(
    *,
    leases: Sequence[LeaseFacts] = (),
    staff: Sequence[StaffFacts] = (),
    passes: Sequence[PassFacts] = (),
    work: Sequence[WorkFacts] = (),
    now: datetime = NOW,
) -> list[Grant]:
    return rights(DOORS, leases, staff, passes, now=now, tz=TZ, work=work)


def test_a_lease_grants_its_unit_and_the_entrances_above_it_for_its_local_days() -> None:
    got = grants_of(leases=[LEASE])
    assert [g.subject for g in got] == ["tenant:8", "tenant:9"]
    for grant in got:
        assert grant.doors == (1, 2, 3)  # property gate, building 10's entrance, unit 100
        assert grant.source == "lease:50"
        assert grant.valid_from == datetime(2026, 1, 1, tzinfo=TZ)
        assert grant.valid_until == datetime(2026, 7, 1, tzinfo=TZ)  # end date inclusive
        assert grant.uses is None


def test_a_signed_lease_grants_from_its_start_and_a_draft_nothing() -> None:
    future = replace(LEASE, status=LeaseStatus.SIGNED, start_date=date(2026, 4, 1))
    (tenant8, _) = grants_of(leases=[future])
    assert tenant8.valid_from == datetime(2026, 4, 1, tzinfo=TZ)
    assert grants_of(leases=[replace(LEASE, status=LeaseStatus.DRAFT)]) == []


def test_ended_terminated_and_past_leases_grant_nothing() -> None:
    for status in (LeaseStatus.ENDED, LeaseStatus.TERMINATED):
        assert grants_of(leases=[replace(LEASE, status=status)]) == []
    # still "active" in the records, but its last day is over
    over = replace(LEASE, end_date=date(2026, 3, 9))
    assert grants_of(leases=[over]) == []
    assert grants_of(leases=[over], now=datetime(2026, 3, 9, 15, 59, tzinfo=UTC)) != []


def test_staff_open_doors_by_role_in_their_properties_for_a_rolling_window() -> None:
    staff = [
        StaffFacts(1, Role.MANAGER, frozenset({1}), active=True),
        StaffFacts(2, Role.FRONT_DESK, frozenset({1}), active=True),
        StaffFacts(3, Role.FINANCE, frozenset({1}), active=True),
        StaffFacts(4, Role.MAINTENANCE, frozenset({1}), active=False),
        StaffFacts(5, Role.ADMIN, frozenset({2}), active=True),
        StaffFacts(6, Role.MAINTENANCE, frozenset({1}), active=True),
    ]
    got = {g.subject: g for g in grants_of(staff=staff)}
    assert set(got) == {"user:1", "user:2", "user:5", "user:6"}
    assert got["user:1"].doors == (1, 2, 3, 4, 5, 6)
    assert got["user:2"].doors == (1, 2, 5)  # entrances only
    assert got["user:6"].doors == (1, 2, 5)  # a flat opens to maintenance through an order
    assert got["user:5"].doors == (7,)
    assert got["user:1"].valid_from == datetime(2026, 3, 10, tzinfo=TZ)
    assert got["user:1"].valid_until == datetime(2026, 3, 10, tzinfo=TZ) + timedelta(
        days=STAFF_DAYS
    )


def test_visitor_passes_keep_their_window_and_uses_and_stay_in_their_property() -> None:
    visit = PassFacts(
        id=3,
        property_id=1,
        door_ids=frozenset({2, 3, 7}),  # 7 is another property's gate
        valid_from=NOW,
        valid_until=NOW + timedelta(hours=4),
        max_uses=2,
        revoked=False,
    )
    (grant,) = grants_of(passes=[visit])
    assert (grant.subject, grant.doors, grant.uses) == ("pass:3", (2, 3), 2)
    assert (grant.valid_from, grant.valid_until) == (visit.valid_from, visit.valid_until)
    assert grants_of(passes=[replace(visit, revoked=True)]) == []
    assert grants_of(passes=[visit], now=visit.valid_until) == []
    assert grants_of(passes=[replace(visit, door_ids=frozenset({7}))]) == []


def test_a_tenant_passes_on_only_their_own_doors_inside_their_window() -> None:
    got = grants_of(leases=[LEASE])
    inside = (NOW, NOW + timedelta(days=1))
    assert covers(got, "tenant:8", [1, 3], *inside)
    assert not covers(got, "tenant:8", [4], *inside)  # a neighbour's unit
    assert not covers(got, "tenant:7", [1], *inside)  # not a tenant of the lease
    late = (NOW, datetime(2026, 7, 2, tzinfo=TZ))
    assert not covers(got, "tenant:8", [1], *late)  # past the lease's end


def test_a_worker_opens_the_unit_of_an_order_in_progress_until_the_end_of_the_day() -> None:
    began = NOW - timedelta(hours=1)
    (grant,) = grants_of(work=[WorkFacts(order_id=70, user_id=6, unit_id=101, since=began)])
    assert (grant.subject, grant.source, grant.doors) == ("user:6", "order:70", (4,))
    assert grant.valid_from == began
    assert grant.valid_until == datetime(2026, 3, 11, tzinfo=TZ)  # local midnight after today
    # the next day's compile renews the window while the work goes on
    (later,) = grants_of(work=[WorkFacts(70, 6, 101, began)], now=NOW + timedelta(days=1))
    assert later.valid_until == datetime(2026, 3, 12, tzinfo=TZ)
    # a unit without a door of its own on these doors grants nothing
    assert grants_of(work=[WorkFacts(71, 6, 999, began)]) == []
