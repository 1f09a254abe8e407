"""Who may open which door, computed from plain records: pure, no session, time passed in.

- A signed or active lease grants each of its tenants the unit's doors, the entrances of the
  unit's building and of its property, from the start date's midnight to the midnight after the
  end date (local time of the property). Ended and terminated leases grant nothing: their
  rights stop when they close, and a lease still signed or active whose end has passed grants
  nothing either.
- Staff get doors by role in their properties, for a rolling window of `STAFF_DAYS` whole
  days (renewed by each compile), so a gateway cut off from the cloud locks a deactivated
  account out within that window at most. Maintenance staff hold the entrances only: a
  tenant's own door opens to them through a work order.
- The worker assigned to a work order in progress on a unit opens that unit's doors from the
  moment the work began to the end of the local day (renewed by each compile while the work
  goes on); the right leaves the list when the order leaves in_progress.
- A visitor pass grants its doors for its window and number of uses, until revoked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cloud.models.access import DoorScope
from cloud.models.auth import Role
from cloud.models.leases import LeaseStatus

GRANTING = frozenset({LeaseStatus.SIGNED, LeaseStatus.ACTIVE})
STAFF_DAYS = 8
# The kinds of door each staff role opens in its properties.
STAFF_SCOPES: dict[Role, frozenset[DoorScope]] = {
    Role.ADMIN: frozenset(DoorScope),
    Role.MANAGER: frozenset(DoorScope),
    Role.MAINTENANCE: frozenset({DoorScope.BUILDING, DoorScope.PROPERTY}),
    Role.FRONT_DESK: frozenset({DoorScope.BUILDING, DoorScope.PROPERTY}),
}


@dataclass(frozen=True, slots=True)
class DoorFacts:
    id: int
    property_id: int
    building_id: int | None
    unit_id: int | None
    scope: DoorScope


@dataclass(frozen=True, slots=True)
class LeaseFacts:
    id: int
    property_id: int
    building_id: int
    unit_id: int
    status: LeaseStatus
    start_date: date
    end_date: date  # inclusive
    tenant_ids: frozenset[int]  # primary and co-tenants


@dataclass(frozen=True, slots=True)
class StaffFacts:
    user_id: int
    role: Role
    property_ids: frozenset[int]
    active: bool


@dataclass(frozen=True, slots=True)
class PassFacts:
    id: int
    property_id: int
    door_ids: frozenset[int]
    valid_from: datetime
    valid_until: datetime
    max_uses: int
    revoked: bool


@dataclass(frozen=True, slots=True)
class WorkFacts:
    """A work order in progress on a unit, and the worker assigned to it."""

    order_id: int
    user_id: int
    unit_id: int
    since: datetime  # when the work began


@dataclass(frozen=True, slots=True)
class Grant:
    """`subject` may open `doors` from `valid_from` until `valid_until` (`uses` times, when
    bounded). `source` names the record it follows (stable, so compiled entries keep their
    ids from one compile to the next)."""

    subject: str  # "tenant:<id>", "user:<id>", "pass:<id>"
    source: str  # "lease:<id>", "staff", "pass:<id>", "order:<id>"
    doors: tuple[int, ...]  # sorted door ids
    valid_from: datetime
    valid_until: datetime
    uses: int | None = None


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


def lease_doors(lease: LeaseFacts, doors: Iterable[DoorFacts]) -> tuple[int, ...]:
    return tuple(
        sorted(
            d.id
            for d in doors
            if (d.scope is DoorScope.UNIT and d.unit_id == lease.unit_id)
            or (d.scope is DoorScope.BUILDING and d.building_id == lease.building_id)
            or (d.scope is DoorScope.PROPERTY and d.property_id == lease.property_id)
        )
    )


def rights(
    doors: Sequence[DoorFacts],
    leases: Sequence[LeaseFacts],
    staff: Sequence[StaffFacts],
    passes: Sequence[PassFacts],
    *,
    now: datetime,
    tz: ZoneInfo,
    work: Sequence[WorkFacts] = (),
) -> list[Grant]:
    """Every grant still open at `now` or later, over `doors` only, sorted."""
    grants: list[Grant] = []
    for lease in leases:
        if lease.status not in GRANTING:
            continue
        start = local_midnight(lease.start_date, tz)
        until = local_midnight(lease.end_date + timedelta(days=1), tz)
        opened = lease_doors(lease, doors)
        if until <= now or not opened:
            continue
        grants.extend(
            Grant(f"tenant:{t}", f"lease:{lease.id}", opened, start, until)
            for t in lease.tenant_ids
        )
    today = now.astimezone(tz).date()
    staff_from = local_midnight(today, tz)
    staff_until = local_midnight(today + timedelta(days=STAFF_DAYS), tz)
    for person in staff:
        scopes = STAFF_SCOPES.get(person.role, frozenset())
        opened = tuple(
            sorted(
                d.id for d in doors if d.scope in scopes and d.property_id in person.property_ids
            )
        )
        if person.active and opened:
            grants.append(Grant(f"user:{person.user_id}", "staff", opened, staff_from, staff_until))
    end_of_day = local_midnight(today + timedelta(days=1), tz)
    for job in work:
        opened = tuple(
            sorted(d.id for d in doors if d.scope is DoorScope.UNIT and d.unit_id == job.unit_id)
        )
        if opened and job.since < end_of_day:
            grants.append(
                Grant(f"user:{job.user_id}", f"order:{job.order_id}", opened, job.since, end_of_day)
            )
    known = {d.id: d for d in doors}
    for visit in passes:
        opened = tuple(
            sorted(
                d
                for d in visit.door_ids
                if d in known and known[d].property_id == visit.property_id
            )
        )
        if visit.revoked or visit.valid_until <= now or not opened:
            continue
        grants.append(
            Grant(
                f"pass:{visit.id}",
                f"pass:{visit.id}",
                opened,
                visit.valid_from,
                visit.valid_until,
                visit.max_uses,
            )
        )
    return sorted(grants, key=lambda g: (g.subject, g.source))


def covers(
    grants: Iterable[Grant], subject: str, door_ids: Iterable[int], start: datetime, end: datetime
) -> bool:
    """Whether `subject` may open each of `door_ids` for the whole of [start, end) under one
    grant: what a tenant may pass on to a visitor."""
    own = [
        g for g in grants if g.subject == subject and g.valid_from <= start and end <= g.valid_until
    ]
    return all(any(d in g.doors for g in own) for d in door_ids)
