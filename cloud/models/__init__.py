"""All tables. Importing this package registers every model on `Base.metadata` (for Alembic)."""

from cloud.db import Base
from cloud.models.audit import AuditEvent
from cloud.models.auth import AuthToken, LoginAttempt, Role, User, UserProperty
from cloud.models.billing import (
    BillingRun,
    DepositSettlementRow,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    JobLock,
    LateFeePolicyRow,
    LineKind,
    MeterSwap,
    Notification,
    Payment,
    PaymentAllocation,
    PrepaidAccount,
    PrepaidEntry,
    Tariff,
    TariffKind,
    UsageHold,
)
from cloud.models.commands import CommandResultRow, CommandState, GatewayCommand
from cloud.models.face import FaceEnrollment
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
from cloud.models.telemetry import Event, Gateway, GatewayEpoch, Quarantine, Reading

__all__ = [
    "AuditEvent",
    "AuthToken",
    "Base",
    "BillingRun",
    "Building",
    "CommandResultRow",
    "CommandState",
    "ContractSignature",
    "DepositSettlementRow",
    "Event",
    "FaceEnrollment",
    "Gateway",
    "GatewayCommand",
    "GatewayEpoch",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "JobLock",
    "LateFeePolicyRow",
    "Lease",
    "LeaseStatus",
    "LeaseTenant",
    "LineKind",
    "LoginAttempt",
    "Meter",
    "MeterKind",
    "MeterSwap",
    "Notification",
    "Organisation",
    "Payment",
    "PaymentAllocation",
    "PrepaidAccount",
    "PrepaidEntry",
    "Property",
    "Proration",
    "Quarantine",
    "Reading",
    "Role",
    "Tariff",
    "TariffKind",
    "Tenant",
    "Unit",
    "UnitStatus",
    "UsageHold",
    "User",
    "UserProperty",
    "Utility",
]
