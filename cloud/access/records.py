"""Access records over a session: doors (with their sealed offline-code secret), PINs, visitor
passes, and loading what `rights` needs for one gateway's doors. The caller commits."""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.access.pins import weakness
from cloud.access.rights import (
    GRANTING,
    DoorFacts,
    LeaseFacts,
    PassFacts,
    StaffFacts,
    WorkFacts,
)
from cloud.db import as_utc
from cloud.maintenance.orders import worker_door_windows
from cloud.models import (
    Door,
    DoorScope,
    Lease,
    LeaseTenant,
    OfflineCodeIssue,
    PinCredential,
    Property,
    Role,
    Unit,
    User,
    UserProperty,
    VisitorPass,
    VisitorPassDoor,
)
from cloud.security import contexts
from cloud.security.crypto import FieldKeys, decrypt, encrypt
from protocols.access import codes
from protocols.errors import AnjuError

SECRET_BYTES = 32
PASS_CODE_DIGITS = 8
CODE_DIGITS = 9  # the list's default for a door (protocols.access.schema.Door)
# RFC 9106's low-memory profile (argon2-cffi's default): what a gateway computes per keypad try.
HASHER = PasswordHasher()


class AccessRecordError(AnjuError):
    """A record that cannot stand (the API answers 422)."""


def create_door(
    session: Session,
    keys: FieldKeys,
    prop: Property,
    *,
    gateway_id: str,
    code: str,
    scope: DoorScope,
    building_id: int | None,
    unit_id: int | None,
    name: str,
    now: datetime,
) -> Door:
    door = Door(
        org_id=prop.org_id,
        property_id=prop.id,
        building_id=building_id,
        unit_id=unit_id,
        scope=scope,
        gateway_id=gateway_id,
        code=code,
        name=name,
        secret_enc=encrypt(
            keys, secrets.token_bytes(SECRET_BYTES), context=contexts.door_secret(gateway_id, code)
        ),
        created_at=now,
    )
    session.add(door)
    return door


def door_secret(keys: FieldKeys, door: Door) -> bytes:
    return decrypt(keys, door.secret_enc, context=contexts.door_secret(door.gateway_id, door.code))


def check_pin(pin: str) -> None:
    """Digits only, 6 to 8 of them, and not one a guesser tries first (`pins.weakness`)."""
    reason = weakness(pin)
    if reason is not None:
        raise AccessRecordError(reason)


def _pin_row(
    session: Session, *, tenant_id: int | None = None, user_id: int | None = None
) -> PinCredential | None:
    if (tenant_id is None) == (user_id is None):
        raise ValueError("a PIN belongs to a tenant or to a staff user")
    column = PinCredential.tenant_id if tenant_id is not None else PinCredential.user_id
    return session.scalar(select(PinCredential).where(column == (tenant_id or user_id)))


def set_pin(
    session: Session, pin: str, *, now: datetime, tenant_id: int | None = None,
    user_id: int | None = None,
) -> PinCredential:  # fmt: skip
    """Set (or replace) the PIN of a tenant or a staff user; only its argon2id hash is kept."""
    check_pin(pin)
    row = _pin_row(session, tenant_id=tenant_id, user_id=user_id)
    if row is None:
        row = PinCredential(tenant_id=tenant_id, user_id=user_id, pin_hash="", updated_at=now)
        session.add(row)
    row.pin_hash = HASHER.hash(pin)
    row.updated_at = now
    session.flush()
    return row


def remove_pin(
    session: Session, *, tenant_id: int | None = None, user_id: int | None = None
) -> bool:
    """Delete the PIN (its credential leaves the lists at the next compile); False if none."""
    row = _pin_row(session, tenant_id=tenant_id, user_id=user_id)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def keypad_id(row: PinCredential | VisitorPass) -> str:
    """What is typed before the PIN or pass code: unique on every keypad, stable for the row."""
    prefix = "1" if isinstance(row, PinCredential) else "2"
    return f"{prefix}{row.id}"


def issue_pass(
    session: Session,
    prop: Property,
    door_ids: list[int],
    *,
    visitor_name: str,
    valid_from: datetime,
    valid_until: datetime,
    max_uses: int,
    user_id: int,
    tenant_id: int | None,
    now: datetime,
) -> tuple[VisitorPass, str]:
    """A pass and its code (shown once: only the hash is kept)."""
    code = "".join(secrets.choice("0123456789") for _ in range(PASS_CODE_DIGITS))
    visit = VisitorPass(
        org_id=prop.org_id,
        property_id=prop.id,
        visitor_name=visitor_name,
        valid_from=valid_from,
        valid_until=valid_until,
        max_uses=max_uses,
        code_hash=HASHER.hash(code),
        issued_by_user_id=user_id,
        issued_by_tenant_id=tenant_id,
        issued_at=now,
    )
    session.add(visit)
    session.flush()
    session.add_all(VisitorPassDoor(pass_id=visit.id, door_id=d) for d in sorted(set(door_ids)))
    session.flush()
    return visit, code


# ---- loading facts --------------------------------------------------------------------------


def door_facts(door: Door) -> DoorFacts:
    return DoorFacts(door.id, door.property_id, door.building_id, door.unit_id, door.scope)


@dataclass(frozen=True)
class Facts:
    """Everything `rights` needs about some properties' doors."""

    doors: list[Door]
    leases: list[LeaseFacts]
    staff: list[StaffFacts]
    passes: list[PassFacts]
    work: list[WorkFacts]


def load_facts(session: Session, doors: list[Door], now: datetime) -> Facts:
    """The leases, staff and passes that can touch `doors` (those of their properties) and
    may still be open at `now`."""
    props = sorted({d.property_id for d in doors})
    recent = (now - timedelta(days=2)).date()  # a lease's last local day may still run
    rows = session.execute(
        select(Lease, Unit.building_id)
        .join(Unit, Unit.id == Lease.unit_id)
        .where(
            Lease.property_id.in_(props),
            Lease.status.in_(GRANTING),
            Lease.end_date >= recent,
        )
    ).all()
    co: dict[int, set[int]] = defaultdict(set)
    for lease_id, tenant_id in session.execute(
        select(LeaseTenant.lease_id, LeaseTenant.tenant_id).where(
            LeaseTenant.lease_id.in_([lease.id for lease, _ in rows])
        )
    ):
        co[lease_id].add(tenant_id)
    leases = [
        LeaseFacts(
            id=lease.id,
            property_id=lease.property_id,
            building_id=building_id,
            unit_id=lease.unit_id,
            status=lease.status,
            start_date=lease.start_date,
            end_date=lease.end_date,
            tenant_ids=frozenset({lease.primary_tenant_id, *co[lease.id]}),
        )
        for lease, building_id in rows
    ]
    return Facts(
        doors=doors,
        leases=leases,
        staff=_staff(session, doors),
        passes=_passes(session, props, now),
        work=[
            WorkFacts(w.order_id, w.worker_id, w.unit_id, w.since)
            for w in worker_door_windows(
                session, {d.unit_id for d in doors if d.unit_id is not None}
            )
        ],
    )


def _staff(session: Session, doors: list[Door]) -> list[StaffFacts]:
    orgs = sorted({d.org_id for d in doors})
    props = {d.property_id for d in doors}
    users = session.scalars(
        select(User).where(User.org_id.in_(orgs), User.role != Role.TENANT, User.active)
    ).all()
    scoped: dict[int, set[int]] = defaultdict(set)
    for user_id, property_id in session.execute(
        select(UserProperty.user_id, UserProperty.property_id).where(
            UserProperty.user_id.in_([u.id for u in users])
        )
    ):
        scoped[user_id].add(property_id)
    org_props: dict[int, set[int]] = defaultdict(set)
    for door in doors:
        org_props[door.org_id].add(door.property_id)
    return [
        StaffFacts(
            user_id=u.id,
            role=u.role,
            property_ids=frozenset(
                (org_props[u.org_id] if u.role is Role.ADMIN else scoped[u.id]) & props
            ),
            active=u.active,
        )
        for u in users
    ]


def _passes(session: Session, props: list[int], now: datetime) -> list[PassFacts]:
    visits = session.scalars(
        select(VisitorPass).where(
            VisitorPass.property_id.in_(props),
            VisitorPass.revoked_at.is_(None),
            VisitorPass.valid_until > now,
        )
    ).all()
    linked: dict[int, set[int]] = defaultdict(set)
    for pass_id, door_id in session.execute(
        select(VisitorPassDoor.pass_id, VisitorPassDoor.door_id).where(
            VisitorPassDoor.pass_id.in_([v.id for v in visits])
        )
    ):
        linked[pass_id].add(door_id)
    return [
        PassFacts(
            id=v.id,
            property_id=v.property_id,
            door_ids=frozenset(linked[v.id]),
            valid_from=as_utc(v.valid_from),
            valid_until=as_utc(v.valid_until),
            max_uses=v.max_uses,
            revoked=v.revoked_at is not None,
        )
        for v in visits
    ]


class CodesUsedUpError(AnjuError):
    """Every counter of that door and window has a code already (the API answers 409)."""


def issue_offline_code(
    session: Session,
    keys: FieldKeys,
    door: Door,
    *,
    start: datetime,
    hours: int,
    issued_by: str,
    now: datetime,
    note: str = "",
) -> tuple[OfflineCodeIssue, str]:
    """A code for `door` from `start` (a whole UTC hour) for `hours` (one of the grid's
    lengths), on the first counter of that window not issued yet; logged, the code not kept."""
    end = start + timedelta(hours=hours)
    taken = set(
        session.scalars(
            select(OfflineCodeIssue.counter).where(
                OfflineCodeIssue.gateway_id == door.gateway_id,
                OfflineCodeIssue.door_code == door.code,
                OfflineCodeIssue.valid_from == start,
                OfflineCodeIssue.valid_until == end,
            )
        )
    )
    free = [c for c in range(codes.COUNTERS) if c not in taken]
    if not free:
        raise CodesUsedUpError(f"all {codes.COUNTERS} codes of that window are issued")
    window = codes.CodeWindow(door.code, start, end, free[0])
    try:
        code = codes.issue(door_secret(keys, door), window, CODE_DIGITS)
    except codes.CodeError as exc:
        raise AccessRecordError(str(exc)) from None
    row = OfflineCodeIssue(
        door_id=door.id,
        door_code=door.code,
        gateway_id=door.gateway_id,
        property_id=door.property_id,
        valid_from=start,
        valid_until=end,
        counter=window.counter,
        issued_by=issued_by,
        issued_at=now,
        note=note,
    )
    session.add(row)
    session.flush()
    return row, code
