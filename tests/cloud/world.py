"""A small two-organisation world for API tests: every kind of record on three properties.

P1 and P2 belong to org A, P3 to org B. Every staff role has a user scoped to P1; the admin sees
all of org A. The tenant user is the primary tenant of P1's lease.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.access import records as access
from cloud.billing.service import accounts
from cloud.billing.service.runs import run_billing
from cloud.commands import service as commands
from cloud.leases import service
from cloud.maintenance import alarms, orders
from cloud.maintenance.sla import load_calendar
from cloud.models import (
    AlarmDelivery,
    AlarmSubscription,
    Asset,
    Building,
    Category,
    DoorScope,
    Gateway,
    Invoice,
    LateFeePolicyRow,
    Lease,
    LeaseStatus,
    Meter,
    MeterKind,
    OrderSource,
    OrderState,
    Organisation,
    PartStock,
    Priority,
    Property,
    Role,
    SparePart,
    Tariff,
    TariffKind,
    Tenant,
    Unit,
    UsageHold,
    User,
    UserProperty,
    Utility,
    WorkOrderPhoto,
)
from cloud.people import new_tenant
from cloud.security import pii, tokens
from cloud.security.crypto import FieldKeys
from cloud.security.passwords import hash_password

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
TZ = ZoneInfo("Asia/Shanghai")  # ANJU_TIMEZONE's default
PASSWORD = "correct horse battery"
COMMAND_KEY = Ed25519PrivateKey.from_private_bytes(bytes(32))  # what apps over the world sign with
_HASH: list[str] = []


def cn_id(serial: int) -> str:
    """A valid-looking resident ID (Beijing, born 1990-01-01) with a correct check character."""
    first17 = f"11010119900101{serial % 1000:03d}"
    return first17 + pii.cn_id_check_char(first17)


@dataclass
class Site:
    """Ids of one property's records."""

    property_id: int
    building_id: int
    unit_id: int
    meter_id: str
    tenant_id: int
    lease_id: int
    user_id: int  # a manager there (target for role changes)
    gateway_id: str = ""  # the gateway placed in this property
    draft_lease_id: int = 0  # next year's lease on the same unit, not yet signed
    contract_sha256: str = ""  # of the English contract, filled in by tests that sign
    invoice_id: int = 0  # the lease's first bill, partly paid
    payment_id: int = 0
    org_id: int = 0
    late_fee_policy_id: int = 0  # the property's default
    hold_id: int = 0  # a spike held for review
    command_id: str = ""  # a ping sent to the gateway
    work_order_id: int = 0  # the tenant's order, assigned to a worker there
    done_order_id: int = 0  # the tenant's order, done (to confirm and rate)
    photo_id: int = 0  # of the assigned order
    alarm_id: int = 0  # an active alarm at the property
    delivery_id: int = 0  # a dead notification of that alarm to the manager there
    door_id: int = 0  # the unit's door, on the gateway
    pass_id: int = 0  # a visitor pass the tenant issued for it
    part_id: int = 0  # a spare part of the organisation, 5 in the property's store


@dataclass
class World:
    sites: dict[str, Site]  # "P1", "P2", "P3"
    tokens: dict[Role, str] = field(default_factory=dict)
    users: dict[Role, int] = field(default_factory=dict)


def _password_hash() -> str:
    if not _HASH:  # argon2id is slow on purpose: hash once per test session
        _HASH.append(hash_password(PASSWORD))
    return _HASH[0]


def add_user(
    session: Session,
    org: Organisation,
    username: str,
    role: Role,
    property_ids: list[int],
    tenant_id: int | None = None,
) -> User:
    user = User(
        org_id=org.id,
        username=username,
        password_hash=_password_hash(),
        role=role,
        tenant_id=tenant_id,
        created_at=NOW,
    )
    session.add(user)
    session.flush()
    session.add_all(UserProperty(user_id=user.id, property_id=p) for p in property_ids)
    return user


def add_site(session: Session, keys: FieldKeys, org: Organisation, name: str, n: int) -> Site:
    prop = Property(org_id=org.id, name=name, city="Shenzhen")
    session.add(prop)
    session.flush()
    bld = Building(property_id=prop.id, name=f"{name}-A", floors=6)
    session.add(bld)
    session.flush()
    unit = Unit(
        property_id=prop.id,
        building_id=bld.id,
        code=f"{name}-101",
        floor=1,
        area_m2=Decimal("40.00"),
        layout="1室1厅",
        base_rent_fen=200000,
    )
    session.add(unit)
    session.flush()
    gateway = Gateway(id=f"gw-{name}", name=f"{name} gateway", property_id=prop.id)
    session.add(gateway)
    session.flush()
    meter = Meter(
        org_id=org.id,
        code=f"m-{name}-1",
        property_id=prop.id,
        building_id=bld.id,
        unit_id=unit.id,
        kind=MeterKind.SUBMETER,
        utility=Utility.ELECTRICITY,
        profile="eastron-sdm120",
        gateway_id=gateway.id,
    )
    spare = Meter(
        org_id=org.id, code=f"m-{name}-2", property_id=prop.id, building_id=bld.id,
        unit_id=unit.id, kind=MeterKind.SUBMETER, utility=Utility.ELECTRICITY,
        profile="eastron-sdm120",
    )  # fmt: skip
    session.add_all([meter, spare])
    session.flush()
    ping = commands.issue(session, COMMAND_KEY, gateway.id, "ping", {}, issued_by="world",
                          now=NOW, ttl=timedelta(minutes=5))  # fmt: skip
    tenant = new_tenant(
        session, keys, prop, name=f"租客{n}", id_number=cn_id(n), now=NOW,
        phone=f"1380013800{n}", bank_card=f"622202020011223344{n}",
    )  # fmt: skip
    session.flush()
    terms = service.Terms(
        start_date=date(2026, 1, 1), end_date=date(2026, 12, 31), rent_fen=200000,
        deposit_fen=200000, payment_cycle_months=3,
    )  # fmt: skip
    lease = service.create_lease(session, unit, tenant.id, terms, NOW)
    lease.status = LeaseStatus.SIGNED
    next_year = replace(terms, start_date=date(2027, 1, 1), end_date=date(2027, 12, 31))
    draft = service.create_lease(session, unit, tenant.id, next_year, NOW)
    manager = add_user(session, org, f"mgr-{name}", Role.MANAGER, [prop.id])
    site = Site(prop.id, bld.id, unit.id, meter.code, tenant.id, lease.id, manager.id, gateway.id,
                draft_lease_id=draft.id, org_id=org.id, command_id=ping.id)  # fmt: skip
    add_billing(session, prop, lease, site)
    add_access(session, keys, prop, unit, site)
    return site


def add_access(session: Session, keys: FieldKeys, prop: Property, unit: Unit, site: Site) -> None:
    """The unit's door on the site's gateway, and a pass the tenant issued for it."""
    door = access.create_door(
        session, keys, prop, gateway_id=site.gateway_id, code=f"door-{unit.code}",
        scope=DoorScope.UNIT, building_id=unit.building_id, unit_id=unit.id, name=unit.code,
        now=NOW,
    )  # fmt: skip
    session.flush()
    visit, _ = access.issue_pass(
        session, prop, [door.id], visitor_name="访客", valid_from=NOW,
        valid_until=NOW + timedelta(hours=3), max_uses=1, user_id=site.user_id,
        tenant_id=site.tenant_id, now=NOW,
    )  # fmt: skip
    site.door_id, site.pass_id = door.id, visit.id


def add_billing(session: Session, prop: Property, lease: Lease, site: Site) -> None:
    """A tariff, January's billing run (the first bill: deposit and a quarter's rent) and a
    partial payment."""
    session.add(
        Tariff(property_id=prop.id, utility=Utility.ELECTRICITY, effective_from=date(2025, 1, 1),
               kind=TariffKind.FLAT, tiers=[{"lower": "0", "upper": "", "price": "0.60"}],
               point="import_energy")
    )  # fmt: skip
    run_billing(session, prop.id, "2026-01", now=NOW, tz=TZ)
    site.invoice_id = session.scalars(select(Invoice.id).where(Invoice.lease_id == lease.id)).one()
    site.payment_id = accounts.record_payment(session, lease, 100000, received_at=NOW).id
    policy = LateFeePolicyRow(org_id=prop.org_id, property_id=prop.id, kind="fixed",
                              amount_fen=5000, grace_days=3)  # fmt: skip
    hold = UsageHold(property_id=prop.id, lease_id=lease.id, meter_id=site.meter_id,
                     period_start=date(2026, 2, 1), reason="usage 900 is 9.0x the baseline",
                     quantity=Decimal(900), created_at=NOW)  # fmt: skip
    session.add_all([policy, hold])
    session.flush()
    site.late_fee_policy_id, site.hold_id = policy.id, hold.id


def build_world(session: Session, keys: FieldKeys) -> World:
    org_a, org_b = Organisation(name="Org A"), Organisation(name="Org B")
    session.add_all([org_a, org_b])
    session.flush()
    world = World(
        sites={
            "P1": add_site(session, keys, org_a, "P1", 1),
            "P2": add_site(session, keys, org_a, "P2", 2),
            "P3": add_site(session, keys, org_b, "P3", 3),
        }
    )
    for org in (org_a, org_b):  # each organisation's default late fee
        session.add(LateFeePolicyRow(org_id=org.id, kind="percent", rate="5/10000", mode="daily"))
    p1 = world.sites["P1"]
    for role in Role:
        user = add_user(
            session,
            org_a,
            f"user-{role}",
            role,
            [] if role in (Role.ADMIN, Role.TENANT) else [p1.property_id],
            tenant_id=p1.tenant_id if role is Role.TENANT else None,
        )
        session.flush()
        world.users[role] = user.id
        world.tokens[role], _ = tokens.issue(session, user.id, "bearer", NOW)
    for site in world.sites.values():
        worker = world.users[Role.MAINTENANCE] if site is p1 else site.user_id
        add_maintenance(session, site, worker)
    session.commit()
    return world


def add_maintenance(session: Session, site: Site, worker_id: int) -> None:
    """Two of the tenant's work orders (one assigned to `worker_id`, one done) and an alarm."""
    cal = load_calendar(session)
    spec = orders.NewOrder(site.property_id, Category.PLUMBING, Priority.NORMAL, "tap drips",
                           unit_id=site.unit_id)  # fmt: skip
    ids = []
    for last in (OrderState.ASSIGNED, OrderState.DONE):
        order = orders.open_order(session, site.org_id, spec, source=OrderSource.TENANT, cal=cal,
                                  now=NOW, who=None, tenant_id=site.tenant_id)  # fmt: skip
        orders.step(session, order, OrderState.ASSIGNED, now=NOW, who=None, assignee_id=worker_id)
        if last is OrderState.DONE:
            orders.step(session, order, OrderState.IN_PROGRESS, now=NOW, who=None)
            orders.step(session, order, OrderState.DONE, now=NOW, who=None)
        ids.append(order.id)
    site.work_order_id, site.done_order_id = ids
    photo = WorkOrderPhoto(order_id=site.work_order_id, content_type="image/png", size=len(PNG),
                           sha256="", data=PNG, uploaded_by=worker_id, created_at=NOW)  # fmt: skip
    session.add(photo)
    heater = Asset(property_id=site.property_id, unit_id=site.unit_id, kind="appliance",
                   name="water heater", vendor="Haier", warranty_end=date(2027, 1, 1))  # fmt: skip
    session.add(heater)
    alarm = alarms.raise_alarm(session, site.org_id, "usage_spike", site.meter_id, "usage 9x",
                               now=NOW, property_id=site.property_id)  # fmt: skip
    sub = AlarmSubscription(user_id=site.user_id, channel="email", target="ops@anju.test")
    session.add(sub)
    session.flush()
    dead = AlarmDelivery(alarm_id=alarm.id, subscription_id=sub.id, event="raised", state="dead",
                         attempts=6, next_at=NOW, last_error="550 no such mailbox")  # fmt: skip
    session.add(dead)
    session.flush()
    site.photo_id, site.alarm_id, site.delivery_id = photo.id, alarm.id, dead.id
    part = SparePart(org_id=site.org_id, code=f"VALVE-{site.property_id}", name="angle valve",
                     unit="pcs", price_fen=1850, reorder_level=2, active=True)  # fmt: skip
    session.add(part)
    session.flush()
    session.add(PartStock(part_id=part.id, property_id=site.property_id, quantity=5))
    site.part_id = part.id


PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)  # a PNG's signature: what the upload check reads


def get_lease(session: Session, lease_id: int) -> Lease:
    return session.get_one(Lease, lease_id)


def get_tenant(session: Session, tenant_id: int) -> Tenant:
    return session.get_one(Tenant, tenant_id)
