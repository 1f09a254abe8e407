"""Who may do what: permissions per role, and the property scope of a principal. Pure data.

Every API route declares one Permission and how its property is found (`cloud.api.deps.Guard`);
the authorization matrix test walks the route table against this table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cloud.models.auth import Role


class Permission(enum.StrEnum):
    PORTFOLIO_READ = "portfolio.read"
    PORTFOLIO_WRITE = "portfolio.write"
    PROPERTY_CREATE = "property.create"
    METERS_READ = "meters.read"
    METERS_WRITE = "meters.write"
    GATEWAYS_COMMAND = "gateways.command"  # send signed commands (ping; see COMMAND_PERMISSIONS)
    DOORS_UNLOCK = "doors.unlock"  # and among them, open a door
    DOORS_READ = "doors.read"  # doors, their events, each gateway's access-list sync
    DOORS_WRITE = "doors.write"  # place, rename, remove doors
    ACCESS_CODES = "access.codes"  # issue an offline one-time code (audited)
    VISITOR_PASSES = "access.passes"  # issue and revoke passes (a tenant: for their own doors)
    PINS_SET = "access.pins"  # set, reset, remove a tenant's keypad PIN (a tenant: their own)
    STAFF_PINS = "access.staff_pins"  # the same for staff in the caller's properties
    GATEWAYS_ENROL = "gateways.enrol"  # issue enrolment tokens for new gateways
    GATEWAYS_CONFIGURE = "gateways.configure"  # set a gateway's remote configuration
    TENANTS_READ = "tenants.read"
    TENANTS_WRITE = "tenants.write"
    TENANTS_REVEAL = "tenants.reveal"
    LEASES_READ = "leases.read"
    LEASES_WRITE = "leases.write"
    LEASES_SIGN = "leases.sign"
    AUDIT_READ = "audit.read"
    USERS_MANAGE = "users.manage"
    BILLING_READ = "billing.read"  # invoices (a tenant: their own), tariffs
    BILLING_MANAGE = "billing.manage"  # tariffs, billing runs
    PAYMENTS_WRITE = "payments.write"  # record a payment
    PAYMENTS_REFUND = "payments.refund"  # reverse a payment; receive, settle a deposit (audited)
    REPORTS_READ = "reports.read"
    WORK_ORDERS_READ = "work_orders.read"  # a tenant: their own
    WORK_ORDERS_CREATE = "work_orders.create"  # a tenant: for their own unit; add photos
    WORK_ORDERS_ASSIGN = "work_orders.assign"
    WORK_ORDERS_WORK = "work_orders.work"  # report progress (maintenance: on their own orders)
    WORK_ORDERS_CONFIRM = "work_orders.confirm"  # confirm, reopen, rate (a tenant: their own)
    ALARMS_READ = "alarms.read"
    ALARMS_MANAGE = "alarms.manage"  # acknowledge, resolve
    PARTS_READ = "parts.read"  # the stores' stock
    PARTS_WRITE = "parts.write"  # the catalogue, receipts into a store
    JOBS_READ = "jobs.read"  # the scheduled jobs and their latest runs
    JOBS_RUN = "jobs.run"  # run a job now for a property
    DATA_IMPORT = "data.import"  # CSV import, organisation-wide (it may add properties)
    SELF = "self"  # any signed-in user, about themselves


P = Permission
_STAFF_READ = {P.SELF, P.PORTFOLIO_READ, P.METERS_READ}
_ORDERS = {P.WORK_ORDERS_READ, P.WORK_ORDERS_CREATE}
_ALL_ORDERS = _ORDERS | {P.WORK_ORDERS_ASSIGN, P.WORK_ORDERS_WORK, P.WORK_ORDERS_CONFIRM}
_ALARMS = {P.ALARMS_READ, P.ALARMS_MANAGE}
_MONEY = {P.BILLING_READ, P.BILLING_MANAGE, P.PAYMENTS_WRITE, P.PAYMENTS_REFUND, P.REPORTS_READ}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MANAGER: frozenset(
        _STAFF_READ
        | {P.PORTFOLIO_WRITE, P.METERS_WRITE, P.TENANTS_READ, P.TENANTS_WRITE, P.TENANTS_REVEAL}
        | {P.GATEWAYS_COMMAND, P.DOORS_UNLOCK, P.GATEWAYS_ENROL, P.GATEWAYS_CONFIGURE}
        | {P.DOORS_READ, P.DOORS_WRITE, P.ACCESS_CODES, P.VISITOR_PASSES, P.PINS_SET}
        | {P.STAFF_PINS}
        | {P.LEASES_READ, P.LEASES_WRITE, P.LEASES_SIGN, P.AUDIT_READ}
        | _MONEY
        | _ALL_ORDERS
        | _ALARMS
        | {P.PARTS_READ, P.PARTS_WRITE}
        | {P.JOBS_READ, P.JOBS_RUN}
    ),
    Role.FRONT_DESK: frozenset(
        _STAFF_READ
        | {P.TENANTS_READ, P.TENANTS_WRITE, P.LEASES_READ, P.LEASES_WRITE, P.LEASES_SIGN}
        | {P.BILLING_READ, P.PAYMENTS_WRITE}  # the desk takes payments
        | _ORDERS
        | {P.WORK_ORDERS_ASSIGN, P.ALARMS_READ}  # and dispatches repairs
        # the desk lets visitors in and sets PINs; offline codes are a manager's
        | {P.DOORS_READ, P.VISITOR_PASSES, P.PINS_SET}
    ),
    Role.FINANCE: frozenset(
        _STAFF_READ | {P.TENANTS_READ, P.TENANTS_REVEAL, P.LEASES_READ} | _MONEY
    ),
    Role.MAINTENANCE: frozenset(
        _STAFF_READ | _ORDERS | {P.WORK_ORDERS_WORK} | _ALARMS | {P.DOORS_READ, P.PARTS_READ}
    ),
    # An installer pings the gateways they put in; opening doors is not theirs.
    Role.INSTALLER: frozenset(
        _STAFF_READ | {P.METERS_WRITE, P.GATEWAYS_COMMAND, P.ALARMS_READ, P.DOORS_READ}
    ),
    # A tenant reads their own person record and leases and signs their own contract; the
    # scope check (own records only) is what keeps them there.
    Role.TENANT: frozenset(
        {P.SELF, P.TENANTS_READ, P.LEASES_READ, P.LEASES_SIGN, P.BILLING_READ}
        | _ORDERS
        | {P.WORK_ORDERS_CONFIRM}
        | {P.VISITOR_PASSES, P.PINS_SET}
    ),
}
# Commands that need more than GATEWAYS_COMMAND (by command name).
COMMAND_PERMISSIONS: dict[str, Permission] = {"door.unlock": P.DOORS_UNLOCK}
# Which personal numbers a role with TENANTS_REVEAL may see in full.
REVEAL_FIELDS: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset({"id_number", "phone", "bank_card", "email"}),
    Role.MANAGER: frozenset({"id_number", "phone", "bank_card", "email"}),
    Role.FINANCE: frozenset({"bank_card"}),  # refunds go to the card on file
}


def may_see(role: Role, field: str) -> bool:
    """Whether a role may learn a personal number in full: reveal it, or search by it (an exact
    search answers whether a guess is right, so repeated guesses reveal the number)."""
    return field in REVEAL_FIELDS.get(role, frozenset())


@dataclass(frozen=True)
class Principal:
    """The signed-in user as routes see it."""

    user_id: int
    username: str
    role: Role
    org_id: int
    # Properties a staff user may act on (an admin: every property of the organisation).
    property_ids: frozenset[int]
    tenant_id: int | None
    ip: str

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    @property
    def is_tenant(self) -> bool:
        return self.role is Role.TENANT

    def sees_property(self, property_id: int) -> bool:
        if self.is_tenant:
            return False
        return property_id in self.property_ids
