"""Doors and access: doors of a property, visitor passes, PINs, offline one-time codes, each
gateway's access-list sync, and what the doors reported. Every change wakes the access-list
publisher; passes, PINs and codes are audited."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.access import records
from cloud.access.pins import MAX_DIGITS, MIN_DIGITS, new_pin
from cloud.access.records import door_facts
from cloud.access.rights import covers, rights
from cloud.api.deps import (
    KeysDep,
    NowDep,
    SessionDep,
    flush_or_conflict,
    guard,
    not_found,
    require_property,
    scoped_get,
)
from cloud.api.paging import BodyId, CursorQ, Page, PageQ, PathId, fetch_newest, page_of
from cloud.api.problems import ProblemError
from cloud.api.routes.audit import AuditOut
from cloud.api.scope import PropertyQ, scope_filter
from cloud.db import as_utc
from cloud.models import (
    AuditEvent,
    Building,
    Door,
    DoorScope,
    Event,
    Gateway,
    GatewayAccess,
    Property,
    Role,
    Tenant,
    Unit,
    User,
    UserProperty,
    VisitorPass,
    VisitorPassDoor,
)
from cloud.security import audit
from cloud.security.authz import Permission, Principal
from protocols.access.codes import DURATIONS_H

router = APIRouter(tags=["doors"])
P = Permission
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Label = Annotated[str, Field(max_length=100)]
MAX_PASS_DAYS = 7
PASS_AHEAD = timedelta(days=90)  # the latest a pass may end
BACKDATE = timedelta(minutes=5)  # a window may start this much before now (clock skew)
CODE_AHEAD = timedelta(days=30)  # the latest an offline code's window may start


def wake_publisher(request: Request) -> None:
    publisher = getattr(request.app.state, "access", None)
    if publisher is not None:
        publisher.changed.set()


# ---- doors --------------------------------------------------------------------------------


class DoorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gateway_id: Annotated[str, Field(min_length=1, max_length=64)]
    code: Code  # the door's id in the gateway's configuration
    name: Label = ""
    scope: DoorScope
    property_id: BodyId
    building_id: BodyId | None = None
    unit_id: BodyId | None = None


class DoorPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Label


class DoorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    property_id: int
    building_id: int | None
    unit_id: int | None
    scope: DoorScope
    gateway_id: str
    code: str
    name: str
    created_at: datetime
    lock_key_fingerprint: str | None = None
    lock_key_registered_at: datetime | None = None


class LockKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # What `anju edge lock provision` prints: never the key itself.
    fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]


def _placement(session: Session, me: Principal, body: DoorIn) -> tuple[Property, int | None]:
    """The property, and the building a unit or building door is in; 404 for anything out of
    the caller's scope or not in that property."""
    require_property(me, body.property_id)
    prop = session.get_one(Property, body.property_id)
    gateway = session.get(Gateway, body.gateway_id)
    if gateway is None or gateway.property_id != prop.id:
        raise not_found("gateway", body.gateway_id)
    building_id = body.building_id
    if body.scope is DoorScope.UNIT:
        unit = session.get(Unit, body.unit_id) if body.unit_id else None
        if unit is None or unit.property_id != prop.id:
            raise not_found("unit", body.unit_id)
        if building_id not in (None, unit.building_id):
            raise ProblemError(422, "the unit is not in that building")
        return prop, unit.building_id
    if body.unit_id is not None:
        raise ProblemError(422, f"a {body.scope} door has no unit")
    if body.scope is DoorScope.BUILDING:
        building = session.get(Building, building_id) if building_id else None
        if building is None or building.property_id != prop.id:
            raise not_found("building", building_id)
        return prop, building.id
    if building_id is not None:
        raise ProblemError(422, "a property door has no building")
    return prop, None


@router.get("/doors")
def list_doors(
    me: Annotated[Principal, guard(P.DOORS_READ, "list")],
    session: SessionDep,
    page: PageQ,
    property_id: PropertyQ = None,
    gateway_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[DoorOut]:
    query = select(Door).where(scope_filter(me, Door.property_id, property_id))
    if gateway_id is not None:
        query = query.where(Door.gateway_id == gateway_id)
    return page_of(session, query, Door.id, page, DoorOut.model_validate)


@router.post("/doors", status_code=201)
def create_door(
    body: DoorIn,
    request: Request,
    me: Annotated[Principal, guard(P.DOORS_WRITE, "body")],
    session: SessionDep,
    keys: KeysDep,
    now: NowDep,
) -> DoorOut:
    prop, building_id = _placement(session, me, body)
    door = records.create_door(
        session, keys, prop, gateway_id=body.gateway_id, code=body.code, scope=body.scope,
        building_id=building_id, unit_id=body.unit_id, name=body.name, now=now,
    )  # fmt: skip
    flush_or_conflict(session, f"gateway {body.gateway_id} already has a door {body.code}")
    audit.about(session, me, "door.create", now, door, detail={"code": door.code})
    session.commit()
    wake_publisher(request)
    return DoorOut.model_validate(door)


@router.get("/doors/{door_id}")
def get_door(
    door_id: PathId,
    me: Annotated[Principal, guard(P.DOORS_READ, "path")],
    session: SessionDep,
) -> DoorOut:
    return DoorOut.model_validate(scoped_get(session, me, Door, door_id))


@router.patch("/doors/{door_id}")
def rename_door(
    door_id: PathId,
    body: DoorPatch,
    me: Annotated[Principal, guard(P.DOORS_WRITE, "path")],
    session: SessionDep,
) -> DoorOut:
    door = scoped_get(session, me, Door, door_id)
    door.name = body.name
    session.commit()
    return DoorOut.model_validate(door)


@router.put("/doors/{door_id}/lock-key")
def register_lock_key(
    door_id: PathId,
    body: LockKeyIn,
    me: Annotated[Principal, guard(P.DOORS_WRITE, "path")],
    session: SessionDep,
    now: NowDep,
) -> DoorOut:
    """Record which key the door's lock was provisioned with (its fingerprint), audited with
    the one it replaces: a re-keyed lock is visible in the door's audit."""
    door = scoped_get(session, me, Door, door_id)
    detail = {"fingerprint": body.fingerprint, "replaced": door.lock_key_fingerprint}
    door.lock_key_fingerprint, door.lock_key_registered_at = body.fingerprint, now
    audit.about(session, me, "door.lock_key", now, door, detail=detail)
    session.commit()
    return DoorOut.model_validate(door)


@router.delete("/doors/{door_id}", status_code=204)
def delete_door(
    door_id: PathId,
    request: Request,
    me: Annotated[Principal, guard(P.DOORS_WRITE, "path")],
    session: SessionDep,
    now: NowDep,
) -> Response:
    """The door leaves its gateway's list at the next compile; passes lose it."""
    door = scoped_get(session, me, Door, door_id)
    audit.about(session, me, "door.delete", now, door, detail={"code": door.code})
    session.delete(door)
    session.commit()
    wake_publisher(request)
    return Response(status_code=204)


# ---- visitor passes -----------------------------------------------------------------------


class PassIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    door_ids: Annotated[list[BodyId], Field(min_length=1, max_length=16)]
    visitor_name: Annotated[str, Field(min_length=1, max_length=100)]
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    max_uses: Annotated[int, Field(ge=1, le=100)] = 1

    @model_validator(mode="after")
    def _window(self) -> PassIn:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if self.valid_until - self.valid_from > timedelta(days=MAX_PASS_DAYS):
            raise ValueError(f"a pass lasts {MAX_PASS_DAYS} days at most")
        return self


class PassOut(BaseModel):
    id: int
    property_id: int
    visitor_name: str
    door_ids: list[int]
    valid_from: datetime
    valid_until: datetime
    max_uses: int
    issued_by_tenant_id: int | None
    issued_at: datetime
    revoked: bool
    keypad_id: str
    code: str | None = None  # only in the answer that issued it


def _pass_out(session: Session, visit: VisitorPass, code: str | None = None) -> PassOut:
    doors = session.scalars(
        select(VisitorPassDoor.door_id).where(VisitorPassDoor.pass_id == visit.id)
    )
    return PassOut(
        id=visit.id,
        property_id=visit.property_id,
        visitor_name=visit.visitor_name,
        door_ids=sorted(doors),
        valid_from=visit.valid_from,
        valid_until=visit.valid_until,
        max_uses=visit.max_uses,
        issued_by_tenant_id=visit.issued_by_tenant_id,
        issued_at=visit.issued_at,
        revoked=visit.revoked_at is not None,
        keypad_id=records.keypad_id(visit),
        code=code,
    )


def _tenant_check(
    session: Session, tenant_id: int, doors: list[Door], body: PassIn, now: datetime, tz: ZoneInfo
) -> None:
    """A tenant passes on only doors their lease opens (others: 404, as doors out of scope),
    and only inside the lease's dates (422)."""
    facts = records.load_facts(session, doors, now)
    grants = rights([door_facts(d) for d in doors], facts.leases, [], [], now=now, tz=tz)
    subject = f"tenant:{tenant_id}"
    opened = {d for g in grants if g.subject == subject for d in g.doors}
    strangers = [d.id for d in doors if d.id not in opened]
    if strangers:
        raise not_found("door", strangers[0])
    if not covers(grants, subject, [d.id for d in doors], body.valid_from, body.valid_until):
        raise ProblemError(422, "a pass lies within the dates of your lease")


@router.post("/visitor-passes", status_code=201)
def issue_pass(
    body: PassIn,
    request: Request,
    me: Annotated[Principal, guard(P.VISITOR_PASSES, "body")],
    session: SessionDep,
    now: NowDep,
) -> PassOut:
    """Issue a pass; the answer holds its code, shown this once. A tenant issues passes only
    for doors their lease opens, inside its dates."""
    if body.valid_from < now - BACKDATE or body.valid_until > now + PASS_AHEAD:
        raise ProblemError(422, "a pass starts from now and ends within 90 days")
    doors = list(session.scalars(select(Door).where(Door.id.in_(body.door_ids))))
    found = {d.id for d in doors}
    missing = [d for d in body.door_ids if d not in found]
    if me.is_tenant:
        tenant = session.get(Tenant, me.tenant_id) if me.tenant_id else None
        if tenant is None or missing or not doors:
            raise not_found("door", missing[0] if missing else body.door_ids[0])
        _tenant_check(
            session, tenant.id, doors, body, now, ZoneInfo(request.app.state.settings.timezone)
        )
    else:
        out = [d.id for d in doors if not me.sees_property(d.property_id)]
        if missing or out:
            raise not_found("door", (missing + out)[0])
    if len({d.property_id for d in doors}) != 1:
        raise ProblemError(422, "a pass opens doors of one property")
    prop = session.get_one(Property, doors[0].property_id)
    visit, code = records.issue_pass(
        session, prop, [d.id for d in doors], visitor_name=body.visitor_name,
        valid_from=body.valid_from, valid_until=body.valid_until, max_uses=body.max_uses,
        user_id=me.user_id, tenant_id=me.tenant_id if me.is_tenant else None, now=now,
    )  # fmt: skip
    detail = {
        "doors": sorted(found),
        "max_uses": body.max_uses,
        "valid_from": body.valid_from.isoformat(),
        "valid_until": body.valid_until.isoformat(),
    }
    audit.about(session, me, "access.pass_issue", now, visit, detail=detail)
    session.commit()
    wake_publisher(request)
    return _pass_out(session, visit, code)


def _own_pass(session: Session, me: Principal, pass_id: int) -> VisitorPass:
    visit = session.get(VisitorPass, pass_id)
    if visit is None:
        raise not_found("pass", pass_id)
    if me.is_tenant:
        mine = me.tenant_id is not None and visit.issued_by_tenant_id == me.tenant_id
    else:
        mine = me.sees_property(visit.property_id)
    if not mine:
        raise not_found("pass", pass_id)
    return visit


@router.get("/visitor-passes")
def list_passes(
    me: Annotated[Principal, guard(P.VISITOR_PASSES, "list")],
    session: SessionDep,
    page: PageQ,
    property_id: PropertyQ = None,
) -> Page[PassOut]:
    """Staff: their properties' passes; a tenant: the passes they issued."""
    if me.is_tenant:
        query = select(VisitorPass).where(VisitorPass.issued_by_tenant_id == me.tenant_id)
    else:
        query = select(VisitorPass).where(scope_filter(me, VisitorPass.property_id, property_id))
    return page_of(session, query, VisitorPass.id, page, lambda v: _pass_out(session, v))


@router.post("/visitor-passes/{pass_id}/revoke")
def revoke_pass(
    pass_id: PathId,
    request: Request,
    me: Annotated[Principal, guard(P.VISITOR_PASSES, "path")],
    session: SessionDep,
    now: NowDep,
) -> PassOut:
    visit = _own_pass(session, me, pass_id)
    if visit.revoked_at is None:
        visit.revoked_at = now
        audit.about(session, me, "access.pass_revoke", now, visit)
        session.commit()
        wake_publisher(request)
    return _pass_out(session, visit)


# ---- PINs ---------------------------------------------------------------------------------


class PinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pin: Annotated[str, Field(min_length=MIN_DIGITS, max_length=MAX_DIGITS)]


class PinOut(BaseModel):
    tenant_id: int | None = None
    user_id: int | None = None  # a staff member's PIN
    keypad_id: str  # typed before the PIN
    updated_at: datetime
    pin: str | None = None  # only in the answer to a reset, shown this once


class PinOwner(BaseModel):
    """Whose PIN a route touches (a tenant or a staff user) and where it is audited."""

    tenant_id: int | None = None
    user_id: int | None = None
    property_id: int | None = None

    @property
    def target(self) -> tuple[str, int]:
        return ("tenant", self.tenant_id) if self.tenant_id is not None else (
            "user", self.user_id or 0)  # fmt: skip


def _tenant_owner(session: Session, me: Principal, tenant_id: int) -> PinOwner:
    tenant = scoped_get(session, me, Tenant, tenant_id)
    return PinOwner(tenant_id=tenant.id, property_id=tenant.property_id)


def _staff_owner(session: Session, me: Principal, user_id: int) -> PinOwner:
    """A staff user of the caller's organisation whose every property the caller manages (a
    PIN opens the doors of the holder's properties: none the caller does not manage), and no
    admin unless the caller is one; tenants' logins have no staff PIN. Else 404."""
    user = scoped_get(session, me, User, user_id)
    properties = set(
        session.scalars(select(UserProperty.property_id).where(UserProperty.user_id == user.id))
    )
    if user.role is Role.TENANT or (
        me.role is not Role.ADMIN
        and (user.role is Role.ADMIN or not properties or not properties <= me.property_ids)
    ):
        raise not_found("user", user_id)
    return PinOwner(user_id=user.id, property_id=min(properties, default=None))


def _set_pin(
    session: Session, me: Principal, request: Request, now: datetime, owner: PinOwner,
    pin: str, *, reset: bool,
) -> PinOut:  # fmt: skip
    try:
        row = records.set_pin(
            session, pin, now=now, tenant_id=owner.tenant_id, user_id=owner.user_id
        )
    except records.AccessRecordError as exc:
        raise ProblemError(422, str(exc)) from None
    kind, ident = owner.target
    audit.record(session, me, "access.pin_reset" if reset else "access.pin_set", now,
                 target_type=kind, target_id=ident, property_id=owner.property_id)  # fmt: skip
    session.commit()
    wake_publisher(request)
    return PinOut(tenant_id=owner.tenant_id, user_id=owner.user_id,
                  keypad_id=records.keypad_id(row), updated_at=now,
                  pin=pin if reset else None)  # fmt: skip


def _remove_pin(
    session: Session, me: Principal, request: Request, now: datetime, owner: PinOwner
) -> Response:
    """Idempotent: no PIN left either way; audited when one was removed."""
    if records.remove_pin(session, tenant_id=owner.tenant_id, user_id=owner.user_id):
        kind, ident = owner.target
        audit.record(session, me, "access.pin_remove", now, target_type=kind, target_id=ident,
                     property_id=owner.property_id)  # fmt: skip
        session.commit()
        wake_publisher(request)
    return Response(status_code=204)


def _pin_routes(
    collection: str, permission: Permission, owner_of: Callable[[Session, Principal, int], PinOwner]
) -> None:
    """Set, reset and remove the PINs of one kind of holder (tenants, staff users)."""
    url = f"/{collection}/{{owner_id}}/pin"
    # A default, not an annotation: the annotations of these nested routes are strings that
    # FastAPI resolves in the module's globals, where a local alias is not.
    me_dep = guard(permission, "path")

    @router.put(url, summary=f"Set or replace a keypad PIN ({collection})")
    def set_pin(
        owner_id: PathId, body: PinIn, request: Request, session: SessionDep, now: NowDep,
        me: Principal = me_dep,
    ) -> PinOut:  # fmt: skip
        """Only the PIN's Argon2id hash is kept."""
        owner = owner_of(session, me, owner_id)
        return _set_pin(session, me, request, now, owner, body.pin, reset=False)

    @router.post(f"{url}/reset", summary=f"Reset a keypad PIN to a random one ({collection})")
    def reset_pin(
        owner_id: PathId, request: Request, session: SessionDep, now: NowDep,
        me: Principal = me_dep,
    ) -> PinOut:  # fmt: skip
        """The new PIN is in this answer only."""
        owner = owner_of(session, me, owner_id)
        return _set_pin(session, me, request, now, owner, new_pin(), reset=True)

    @router.delete(url, status_code=204, summary=f"Remove a keypad PIN ({collection})")
    def remove_pin(
        owner_id: PathId, request: Request, session: SessionDep, now: NowDep,
        me: Principal = me_dep,
    ) -> Response:  # fmt: skip
        """It stops opening doors once the gateways have the next list."""
        return _remove_pin(session, me, request, now, owner_of(session, me, owner_id))


# Tenants: managers, the front desk, the tenant themselves. Staff: admins, and managers for
# staff of their own properties (`_staff_owner`).
_pin_routes("tenants", P.PINS_SET, _tenant_owner)
_pin_routes("users", P.STAFF_PINS, _staff_owner)


# ---- offline codes ------------------------------------------------------------------------


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    valid_from: AwareDatetime  # a whole UTC hour
    hours: Annotated[int, Field(ge=1, le=max(DURATIONS_H))]
    note: Annotated[str, Field(max_length=500)] = ""


class CodeOut(BaseModel):
    door_id: int
    code: str
    valid_from: datetime
    valid_until: datetime
    counter: int
    issue_id: int


@router.post("/doors/{door_id}/offline-codes", status_code=201)
def issue_code(
    door_id: PathId,
    body: CodeIn,
    me: Annotated[Principal, guard(P.ACCESS_CODES, "path")],
    session: SessionDep,
    keys: KeysDep,
    now: NowDep,
) -> CodeOut:
    """A one-time code the door's gateway verifies offline, for a window on the hour grid
    (`hours` one of 1, 2, 4, 8, 12, 24, 48, 72, 168). Audited; the code is not kept."""
    door = scoped_get(session, me, Door, door_id)
    start = body.valid_from
    if body.hours not in DURATIONS_H:
        raise ProblemError(422, f"hours is one of {list(DURATIONS_H)}")
    if start.minute or start.second or start.microsecond or start.utcoffset() is None:
        raise ProblemError(422, "valid_from is a whole hour")
    if start + timedelta(hours=body.hours) <= now or start > now + CODE_AHEAD:
        raise ProblemError(422, "the window must not have ended and start within 30 days")
    try:
        row, code = records.issue_offline_code(
            session,
            keys,
            door,
            start=start,
            hours=body.hours,
            issued_by=me.username,
            now=now,
            note=body.note,
        )
    except records.CodesUsedUpError as exc:
        raise ProblemError(409, str(exc)) from None
    except records.AccessRecordError as exc:
        raise ProblemError(422, str(exc)) from None
    detail = {"valid_from": start.isoformat(), "hours": body.hours, "counter": row.counter,
              "issue_id": row.id}  # fmt: skip
    audit.about(session, me, "door.offline_code", now, door, detail=detail)
    session.commit()
    return CodeOut(door_id=door.id, code=code, valid_from=row.valid_from,
                   valid_until=row.valid_until, counter=row.counter, issue_id=row.id)  # fmt: skip


# ---- sync state, events, audit ------------------------------------------------------------


class AccessSyncOut(BaseModel):
    gateway_id: str
    online: bool
    compiled_version: int
    compiled_at: datetime | None
    rights: int
    sent_version: int
    sent_at: datetime | None
    applied_version: int
    applied_at: datetime | None
    in_sync: bool


@router.get("/gateways/{gateway_id}/access")
def access_sync(
    gateway_id: Annotated[str, Path(max_length=64)],
    me: Annotated[Principal, guard(P.DOORS_READ, "path")],
    session: SessionDep,
) -> AccessSyncOut:
    """What the cloud compiled and sent against what the gateway reports it applied."""
    gateway = scoped_get(session, me, Gateway, gateway_id)
    state = session.get(GatewayAccess, gateway.id)
    out = AccessSyncOut(
        gateway_id=gateway.id, online=gateway.online, compiled_version=0, compiled_at=None,
        rights=0, sent_version=0, sent_at=None, applied_version=0, applied_at=None,
        in_sync=True,
    )  # fmt: skip
    if state is None:
        return out
    return out.model_copy(
        update={
            "compiled_version": state.compiled_version,
            "compiled_at": state.compiled_at,
            "rights": state.entries,
            "sent_version": state.sent_version,
            "sent_at": state.sent_at,
            "applied_version": state.applied_version,
            "applied_at": state.applied_at,
            "in_sync": state.applied_version == state.compiled_version,
        }
    )


class DoorEventOut(BaseModel):
    id: int
    type: str
    ts: datetime
    gateway_id: str
    seq: int
    data: dict[str, Any]


class DoorEventPage(BaseModel):
    door_id: int
    items: list[DoorEventOut]
    next_after: str | None


@router.get("/doors/{door_id}/events")
def door_events(
    door_id: PathId,
    me: Annotated[Principal, guard(P.DOORS_READ, "path")],
    session: SessionDep,
    type: Annotated[str | None, Query(max_length=64)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    after: CursorQ = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DoorEventPage:
    """What the door's gateway reported about it (decisions, lock events), newest first by
    (ts, id); page with `after=<next_after>`."""
    door = scoped_get(session, me, Door, door_id)
    query = select(Event).where(Event.gateway_id == door.gateway_id, Event.source == door.code)
    if type:
        query = query.where(Event.type == type)
    if since:
        query = query.where(Event.ts >= since)
    if until:
        query = query.where(Event.ts < until)
    rows, nxt = fetch_newest(session, query, Event.ts, Event.id, after, limit=limit)
    items = [
        DoorEventOut(
            id=e.id, type=e.type, ts=as_utc(e.ts), gateway_id=e.gateway_id, seq=e.seq, data=e.data
        )
        for e in rows
    ]
    return DoorEventPage(door_id=door.id, items=items, next_after=nxt)


@router.get("/doors/{door_id}/audit")
def door_audit(
    door_id: PathId,
    me: Annotated[Principal, guard(P.AUDIT_READ, "path")],
    session: SessionDep,
    page: PageQ,
) -> Page[AuditOut]:
    """Audit entries about the door (placed, removed, offline codes issued)."""
    door = scoped_get(session, me, Door, door_id)
    query = select(AuditEvent).where(
        AuditEvent.target_type == "door", AuditEvent.target_id == str(door.id)
    )
    return page_of(session, query, AuditEvent.id, page, AuditOut.model_validate)
