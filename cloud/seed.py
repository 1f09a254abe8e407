"""`anju cloud seed-demo`: a realistic small portfolio for the demo and for trying the console.

2 properties, 3 buildings, 120 units with electricity and water submeters and a master meter per
building, ~100 tenants, leases in every state (with a renewal), and one login per role. The
names and numbers are made up; ID numbers carry valid check characters. Deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.leases import service
from cloud.leases.lifecycle import Action, add_months
from cloud.models import (
    Building,
    LeaseStatus,
    Meter,
    MeterKind,
    Organisation,
    Property,
    Role,
    Unit,
    UnitStatus,
    User,
    UserProperty,
    Utility,
)
from cloud.people import new_tenant
from cloud.security.crypto import FieldKeys
from cloud.security.passwords import hash_password
from cloud.security.pii import cn_id_check_char
from protocols.errors import AnjuError

ORG = "安居示范公寓管理有限公司"
PROPERTIES = (("南山青年公寓", "深圳", ("A栋", "B栋")), ("西湖人才公寓", "杭州", ("1号楼",)))
FLOORS, UNITS_PER_FLOOR = 8, 5
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
LAYOUTS = (
    ("开间", Decimal("25.00"), 150000),
    ("1室1厅", Decimal("38.50"), 220000),
    ("2室1厅", Decimal("62.00"), 360000),
)
SUBMETERS = ((Utility.ELECTRICITY, "eastron-sdm120", 6), (Utility.WATER, "tuf-2000", 5))
PLAN = (
    [LeaseStatus.ACTIVE] * 80
    + [LeaseStatus.SIGNED] * 6
    + [LeaseStatus.DRAFT] * 4
    + [LeaseStatus.ENDED] * 5
    + [LeaseStatus.TERMINATED] * 5
)
STEPS: dict[LeaseStatus, tuple[Action, ...]] = {
    LeaseStatus.DRAFT: (),
    LeaseStatus.SIGNED: (Action.SIGN,),
    LeaseStatus.ACTIVE: (Action.SIGN, Action.ACTIVATE),
    LeaseStatus.ENDED: (Action.SIGN, Action.ACTIVATE, Action.END),
    LeaseStatus.TERMINATED: (Action.SIGN, Action.ACTIVATE, Action.TERMINATE),
}
DEMO_PASSWORD = "anju-demo-password"  # noqa: S105 - printed for the demo; development only


class AlreadySeededError(AnjuError):
    pass


@dataclass(frozen=True)
class SeedSummary:
    properties: int
    buildings: int
    units: int
    meters: int
    tenants: int
    leases: dict[str, int]
    users: list[str]


def _cn_id(rng: random.Random) -> str:
    region = rng.choice(["110101", "310104", "440305", "330106", "510107"])
    born = date(1970, 1, 1) + timedelta(days=rng.randrange(365 * 35))
    first17 = f"{region}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + cn_id_check_char(first17)


def seed_demo(session: Session, keys: FieldKeys, now: datetime) -> SeedSummary:
    """Adds the demo portfolio; refuses if it is there already. The caller commits."""
    if session.scalar(select(Organisation.id).where(Organisation.name == ORG)) is not None:
        raise AlreadySeededError(f"the demo organisation {ORG!r} exists already")
    rng = random.Random(20260301)  # noqa: S311 - demo data, not secrets
    org = Organisation(name=ORG)
    session.add(org)
    session.flush()
    props, units, n_meters = _portfolio(session, org)
    counts, first_tenant_id = _tenants_and_leases(session, keys, rng, props, units, now=now)
    for unit in units[-3:]:
        unit.status = UnitStatus.MAINTENANCE
    users = _users(session, org, props, first_tenant_id, now)
    return SeedSummary(
        properties=len(props),
        buildings=sum(len(b) for _n, _c, b in PROPERTIES),
        units=len(units),
        meters=n_meters,
        tenants=sum(v for k, v in counts.items() if k != "renewal"),
        leases=counts,
        users=users,
    )


def _portfolio(session: Session, org: Organisation) -> tuple[list[Property], list[Unit], int]:
    props: list[Property] = []
    units: list[Unit] = []
    n_meter = 0
    for pname, city, bnames in PROPERTIES:
        prop = Property(org_id=org.id, name=pname, city=city, address=f"{city}市示范路1号")
        session.add(prop)
        session.flush()
        props.append(prop)
        for bname in bnames:
            bld = Building(property_id=prop.id, name=bname, floors=FLOORS)
            session.add(bld)
            session.flush()
            n_meter += 1
            session.add(
                Meter(
                    org_id=org.id, code=f"m-{n_meter:04d}", property_id=prop.id,
                    building_id=bld.id,
                    kind=MeterKind.MASTER, utility=Utility.ELECTRICITY,
                    profile="chint-dtsu666", digits=8,
                )
            )  # fmt: skip
            for floor in range(1, FLOORS + 1):
                for k in range(1, UNITS_PER_FLOOR + 1):
                    layout, area, rent = LAYOUTS[(floor + k) % 3]
                    unit = Unit(
                        property_id=prop.id, building_id=bld.id, code=f"{bname[0]}-{floor}{k:02d}",
                        floor=floor, area_m2=area, layout=layout,
                        base_rent_fen=rent + 5000 * (floor // 3),
                    )  # fmt: skip
                    session.add(unit)
                    units.append(unit)
            session.flush()
    for unit in units:
        for utility, profile, digits in SUBMETERS:
            n_meter += 1
            session.add(
                Meter(
                    org_id=org.id, code=f"m-{n_meter:04d}", property_id=unit.property_id,
                    building_id=unit.building_id, unit_id=unit.id, kind=MeterKind.SUBMETER,
                    utility=utility, profile=profile, digits=digits,
                )
            )  # fmt: skip
    return props, units, n_meter


def _tenants_and_leases(
    session: Session,
    keys: FieldKeys,
    rng: random.Random,
    props: list[Property],
    units: list[Unit],
    *,
    now: datetime,
) -> tuple[dict[str, int], int | None]:
    """Most units let; a few leases in each other state; the last units stay vacant."""
    today = now.date()
    counts: dict[str, int] = {}
    first_tenant_id: int | None = None  # the demo tenant login: an active lease's tenant
    by_id = {p.id: p for p in props}
    for unit, status in zip(units, PLAN, strict=False):
        tenant = new_tenant(
            session, keys, by_id[unit.property_id],
            name=rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2)))),
            id_number=_cn_id(rng), now=now, phone=f"1{rng.choice('3589')}{rng.randrange(10**9):09}",
            bank_card=f"6222{rng.randrange(10**15):015d}" if rng.random() < 0.7 else None,
        )  # fmt: skip
        session.flush()
        first_tenant_id = first_tenant_id or tenant.id
        lived = status in (LeaseStatus.ACTIVE, LeaseStatus.ENDED, LeaseStatus.TERMINATED)
        if lived:
            back = rng.randrange(2, 11) + (0 if status is LeaseStatus.ACTIVE else 12)
            start = add_months(today, -back)
        else:
            start = today + timedelta(days=rng.randrange(5, 40))
        terms = service.Terms(
            start_date=start, end_date=add_months(start, 12) - timedelta(days=1),
            rent_fen=unit.base_rent_fen, deposit_fen=unit.base_rent_fen,
            payment_cycle_months=rng.choice((1, 1, 3, 3, 3, 6)),
            occupant_count=rng.choice((1, 1, 2, 3)),
        )  # fmt: skip
        lease = service.create_lease(session, unit, tenant.id, terms, now)
        session.flush()
        steps = STEPS[status]
        for action in steps:
            day = {Action.END: lease.end_date, Action.TERMINATE: today}.get(action, start)
            service.apply(session, lease, action, today=day, now=now,
                          terminated_on=start + timedelta(days=90), reason="提前退租")  # fmt: skip
        if status is LeaseStatus.ACTIVE and counts.get("renewal", 0) < 3:
            service.renew(session, lease, 12, now)  # a linked draft for next year
            counts["renewal"] = counts.get("renewal", 0) + 1
        counts[status] = counts.get(status, 0) + 1
        session.flush()
    return counts, first_tenant_id


def _users(
    session: Session,
    org: Organisation,
    props: list[Property],
    tenant_id: int | None,
    now: datetime,
) -> list[str]:
    password = hash_password(DEMO_PASSWORD)
    names = []
    for role in Role:
        user = User(
            org_id=org.id, username=f"demo-{role}", display_name=f"Demo {role}",
            password_hash=password, role=role, created_at=now,
            tenant_id=tenant_id if role is Role.TENANT else None,
        )  # fmt: skip
        session.add(user)
        session.flush()
        if role not in (Role.ADMIN, Role.TENANT):
            session.add_all(UserProperty(user_id=user.id, property_id=p.id) for p in props)
        names.append(user.username)
    return names
