"""All tables. Importing this package registers every model on `Base.metadata` (for Alembic)."""

from cloud.db import Base
from cloud.models.audit import AuditEvent
from cloud.models.auth import AuthToken, Role, User, UserProperty
from cloud.models.leases import ContractSignature, Lease, LeaseStatus, LeaseTenant, Proration
from cloud.models.people import Tenant
from cloud.models.portfolio import (
    Building,
    Meter,
    MeterKind,
    Organisation,
    Property,
    Unit,
    UnitStatus,
    Utility,
)
from cloud.models.telemetry import Gateway, Quarantine, Reading

__all__ = [
    "AuditEvent",
    "AuthToken",
    "Base",
    "Building",
    "ContractSignature",
    "Gateway",
    "Lease",
    "LeaseStatus",
    "LeaseTenant",
    "Meter",
    "MeterKind",
    "Organisation",
    "Property",
    "Proration",
    "Quarantine",
    "Reading",
    "Role",
    "Tenant",
    "Unit",
    "UnitStatus",
    "User",
    "UserProperty",
    "Utility",
]
