"""Lease records over a session: create, edit a draft's terms, step through the lifecycle,
renew. The caller commits.

The rules themselves are in `lifecycle` (pure); this applies them to rows and keeps the unit's
status in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.billing import bounds
from cloud.billing.errors import BillingError
from cloud.billing.schedule import supervision_reasons
from cloud.leases.lifecycle import (
    Action,
    IllegalTransitionError,
    Period,
    next_status,
    renewal_period,
)
from cloud.models import (
    LateFeePolicyRow,
    Lease,
    LeaseStatus,
    LeaseTenant,
    Property,
    Proration,
    Unit,
    UnitStatus,
)
from protocols.errors import AnjuError

HOLDING = (LeaseStatus.SIGNED, LeaseStatus.ACTIVE)  # statuses that hold a unit for a period
PAYMENT_CYCLES = (1, 2, 3, 6, 12)
# Terms are agreed at signing; after that they change only by renewal (a new, linked lease).
TERMS_EDITABLE = frozenset({LeaseStatus.DRAFT})


class LeaseConflictError(AnjuError):
    """Terms that cannot stand (the API answers 422)."""


class TermsLockedError(AnjuError):
    """A signed (or later) lease's terms cannot be edited (the API answers 409)."""

    def __init__(self, status: LeaseStatus) -> None:
        super().__init__(
            f"the terms of a {status} lease are fixed; change them by renewal "
            "(POST /leases/{id}/renewals) or edit a draft"
        )
        self.status = status


@dataclass(frozen=True)
class Terms:
    start_date: date
    end_date: date
    rent_fen: int
    deposit_fen: int
    payment_cycle_months: int = 1
    due_days_before: int = 7
    proration: Proration = Proration.CALENDAR_DAYS
    occupant_count: int = 1
    late_fee_policy_id: int | None = None


def needs_supervised_account(lease: Lease) -> bool:
    return bool(supervision_reasons(lease.rent_fen, lease.payment_cycle_months, lease.deposit_fen))


def check_terms(terms: Terms) -> None:
    """LeaseConflictError unless the terms can stand (the API, the importer and renewals all
    come through here): money and dates within billing's bounds."""
    if terms.end_date <= terms.start_date:
        raise LeaseConflictError("end_date must be after start_date")
    try:
        bounds.check_span(terms.start_date, terms.end_date)
        bounds.check_fen(terms.rent_fen, "rent_fen")
        bounds.check_fen(terms.deposit_fen, "deposit_fen")
    except BillingError as exc:
        raise LeaseConflictError(str(exc)) from None
    if terms.payment_cycle_months not in PAYMENT_CYCLES:
        raise LeaseConflictError("payment_cycle_months must be 1, 2, 3, 6 or 12")


def terms_of(lease: Lease) -> Terms:
    return Terms(**{name: getattr(lease, name) for name in Terms.__dataclass_fields__})


def edit_terms(
    session: Session, lease: Lease, changes: Mapping[str, Any]
) -> dict[str, tuple[object, object]]:
    """Change a draft lease's terms; returns {field: (old, new)} for what really changed.

    TermsLockedError once the lease is signed; LeaseConflictError for terms that cannot stand.
    """
    if lease.status not in TERMS_EDITABLE:
        raise TermsLockedError(lease.status)
    old = terms_of(lease)
    new = replace(old, **changes)
    check_terms(new)
    before, after = asdict(old), asdict(new)
    diff = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    for name, (_, value) in diff.items():
        setattr(lease, name, value)
    return diff


def create_lease(
    session: Session,
    unit: Unit,
    primary_tenant_id: int,
    terms: Terms,
    now: datetime,
    *,
    co_tenant_ids: tuple[int, ...] = (),
    renewed_from_id: int | None = None,
    external_ref: str | None = None,
) -> Lease:
    check_terms(terms)
    lease = Lease(
        org_id=session.get_one(Property, unit.property_id).org_id,
        property_id=unit.property_id,
        unit_id=unit.id,
        primary_tenant_id=primary_tenant_id,
        status=LeaseStatus.DRAFT,
        renewed_from_id=renewed_from_id,
        external_ref=external_ref,
        created_at=now,
        **terms.__dict__,
    )
    session.add(lease)
    session.flush()
    session.add_all(
        LeaseTenant(lease_id=lease.id, tenant_id=t)
        for t in sorted(set(co_tenant_ids) - {primary_tenant_id})
    )
    return lease


def overlapping(session: Session, lease: Lease) -> Lease | None:
    """Another signed or active lease on the same unit whose period meets this one."""
    return session.scalar(
        select(Lease)
        .where(
            Lease.unit_id == lease.unit_id,
            Lease.id != lease.id,
            Lease.status.in_(HOLDING),
            Lease.start_date <= lease.end_date,
            Lease.end_date >= lease.start_date,
        )
        .limit(1)
    )


def apply(
    session: Session,
    lease: Lease,
    action: Action,
    *,
    today: date,
    now: datetime,
    terminated_on: date | None = None,
    reason: str = "",
) -> Lease:
    period = Period(lease.start_date, lease.end_date)
    target = next_status(
        lease.status, action, period=period, today=today, terminated_on=terminated_on
    )
    unit = session.get_one(Unit, lease.unit_id)
    if action is Action.SIGN:
        other = overlapping(session, lease)
        if other is not None:
            raise IllegalTransitionError(
                lease.status, action, f"unit is already let by lease {other.id} in that period"
            )
        lease.signed_at = now
        if unit.status is UnitStatus.VACANT:
            unit.status = UnitStatus.RESERVED
    elif action is Action.ACTIVATE:
        lease.activated_at = now
        unit.status = UnitStatus.OCCUPIED
    else:  # END or TERMINATE
        lease.closed_at = now
        if action is Action.TERMINATE:
            lease.terminated_on = terminated_on
            lease.termination_reason = reason
        lease.status = target
        session.flush()
        if holding_lease(session, unit.id) is None:
            unit.status = UnitStatus.VACANT
    lease.status = target
    return lease


def holding_lease(session: Session, unit_id: int) -> Lease | None:
    return session.scalar(
        select(Lease).where(Lease.unit_id == unit_id, Lease.status.in_(HOLDING)).limit(1)
    )


RULE_COLUMNS = ("org_id", "property_id", "kind", "amount_fen", "rate", "mode", "grace_days",
                "cap_fen", "min_balance_fen")  # fmt: skip


def own_rule_copy(session: Session, policy_id: int | None) -> int | None:
    """A copy of a lease's own late-fee rule for its renewal: a lease's rule is its own (billing
    replaces or deletes it with the lease, and a rule no lease names is the property's default)."""
    rule = session.get(LateFeePolicyRow, policy_id) if policy_id is not None else None
    if rule is None:
        return None
    copy = LateFeePolicyRow(**{c: getattr(rule, c) for c in RULE_COLUMNS})
    session.add(copy)
    session.flush()
    return copy.id


def renew(
    session: Session, lease: Lease, months: int, now: datetime, *, rent_fen: int | None = None
) -> Lease:
    """A new draft lease for the following period, linked to this one."""
    existing = session.scalar(
        select(Lease.id).where(
            Lease.renewed_from_id == lease.id, Lease.status != LeaseStatus.TERMINATED
        )
    )
    if existing is not None:
        raise IllegalTransitionError(lease.status, Action.RENEW, f"already renewed as {existing}")
    period = renewal_period(lease.status, Period(lease.start_date, lease.end_date), months)
    co = tuple(
        session.scalars(select(LeaseTenant.tenant_id).where(LeaseTenant.lease_id == lease.id))
    )
    terms = Terms(
        start_date=period.start,
        end_date=period.end,
        rent_fen=lease.rent_fen if rent_fen is None else rent_fen,
        deposit_fen=lease.deposit_fen,
        payment_cycle_months=lease.payment_cycle_months,
        due_days_before=lease.due_days_before,
        proration=lease.proration,
        occupant_count=lease.occupant_count,
        late_fee_policy_id=own_rule_copy(session, lease.late_fee_policy_id),
    )
    unit = session.get_one(Unit, lease.unit_id)
    return create_lease(
        session,
        unit,
        lease.primary_tenant_id,
        terms,
        now,
        co_tenant_ids=co,
        renewed_from_id=lease.id,
    )
