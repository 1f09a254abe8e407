"""Billing rules operators set and review: late-fee policies (org, property, lease; the most
specific wins) and usage holds (spikes waiting for review before they are billed)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.deps import NowDep, SessionDep, guard, not_found, require_property, scoped_get
from cloud.api.paging import AfterQ, BodyId, LimitQ, Page, PathId, fetch_page
from cloud.api.problems import ProblemError
from cloud.api.routes.billing import Orm
from cloud.api.scope import PropertyQ, scope_filter
from cloud.billing.bounds import Fen, Quantity
from cloud.billing.errors import BillingError
from cloud.billing.late_fees import FeeKind, FeeMode
from cloud.billing.service import holds
from cloud.billing.service.fees import Policies, Source
from cloud.models import HoldKind, LateFeePolicyRow, Lease, Role, UsageHold
from cloud.security import audit
from cloud.security.authz import Permission, Principal

router = APIRouter(tags=["billing"])
P = Permission

# ---- late-fee policies ------------------------------------------------------------------


class PolicyTerms(BaseModel):
    kind: FeeKind
    amount_fen: Fen = Field(0, description="Per charge, for kind=fixed.")
    rate: str = Field("0", max_length=24, description='Per charge, for kind=percent: a fraction '
                      'of the overdue balance, "5/10000" or "0.0005" (0.05 %).')  # fmt: skip
    mode: FeeMode = FeeMode.ONCE
    grace_days: int = Field(0, ge=0, le=365)
    cap_fen: Fen | None = Field(None, description="Total late fees on one invoice at most.")
    min_balance_fen: Fen = Field(1, description="No fee while less than this is overdue.")

    @field_validator("rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            rate = Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError("rate must be a fraction (5/10000) or a decimal (0.0005)") from None
        if not 0 <= rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        return str(rate)

    @model_validator(mode="after")
    def _charges_something(self) -> PolicyTerms:
        if self.kind is FeeKind.FIXED and self.amount_fen <= 0:
            raise ValueError("a fixed late fee needs amount_fen > 0")
        if self.kind is FeeKind.PERCENT and Fraction(self.rate) <= 0:
            raise ValueError("a percent late fee needs rate > 0")
        return self

    def values(self) -> dict[str, object]:
        return {**self.model_dump(), "kind": str(self.kind), "mode": str(self.mode)}


class PolicyIn(PolicyTerms):
    property_id: BodyId | None = Field(
        None, description="The property whose default this is; none: the organisation's "
        "default (admins only).")  # fmt: skip


class PolicyOut(Orm):
    id: int
    org_id: int
    property_id: int | None
    kind: str
    amount_fen: int
    rate: str
    mode: str
    grace_days: int
    cap_fen: int | None
    min_balance_fen: int


class EffectiveOut(BaseModel):
    lease_id: int
    source: Source | None  # lease, property or org; None: no late fees
    policy: PolicyOut | None


def policy_for(
    session: Session, me: Principal, policy_id: int, *, write: bool = False
) -> LateFeePolicyRow:
    """A policy of the caller's properties, or their organisation's default (changed only by
    an admin); anything else is 404."""
    row = session.get(LateFeePolicyRow, policy_id)
    if row is not None and row.org_id == me.org_id:
        if row.property_id is not None and me.sees_property(row.property_id):
            return row
        if row.property_id is None:
            if write:
                _org_default_allowed(me)
            return row
    raise not_found("late-fee policy", policy_id)


def _org_default_allowed(me: Principal) -> None:
    if me.role is not Role.ADMIN:
        raise ProblemError(403, "only an admin sets the organisation's default late fee")


@router.get("/late-fee-policies")
def list_policies(
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "list")],
    session: SessionDep,
    property_id: PropertyQ = None,
    after: AfterQ = None,
    limit: LimitQ = 50,
) -> Page[PolicyOut]:
    """The caller's properties' policies (lease rules included) and, without `property_id`,
    the organisation's defaults, which apply where nothing more specific is set."""
    where = scope_filter(me, LateFeePolicyRow.property_id, property_id)
    if property_id is None:
        where = where | LateFeePolicyRow.property_id.is_(None)
    query = select(LateFeePolicyRow).where(LateFeePolicyRow.org_id == me.org_id, where)
    rows, nxt = fetch_page(session, query, LateFeePolicyRow.id, after, limit)
    return Page(items=[PolicyOut.model_validate(r) for r in rows], next_after=nxt)


@router.post("/late-fee-policies", status_code=201)
def create_policy(
    body: PolicyIn,
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "body")],
    session: SessionDep,
    now: NowDep,
) -> PolicyOut:
    """A property's default (the newest one wins), or the organisation's."""
    if body.property_id is None:
        _org_default_allowed(me)
    else:
        require_property(me, body.property_id)
    row = LateFeePolicyRow(org_id=me.org_id, **body.values())
    session.add(row)
    session.flush()
    audit.record(session, me, "late_fee_policy.create", now, target_type="late_fee_policy",
                 target_id=row.id, property_id=row.property_id, detail=body.values())  # fmt: skip
    session.commit()
    return PolicyOut.model_validate(row)


@router.get("/late-fee-policies/{policy_id}")
def get_policy(
    policy_id: PathId,
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "path")],
    session: SessionDep,
) -> PolicyOut:
    return PolicyOut.model_validate(policy_for(session, me, policy_id))


@router.put("/late-fee-policies/{policy_id}")
def update_policy(
    policy_id: PathId,
    body: PolicyTerms,
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "path")],
    session: SessionDep,
    now: NowDep,
) -> PolicyOut:
    """New terms apply to fees charged from now on; fees already charged are invoices."""
    row = policy_for(session, me, policy_id, write=True)
    for name, value in body.values().items():
        setattr(row, name, value)
    audit.record(session, me, "late_fee_policy.update", now, target_type="late_fee_policy",
                 target_id=row.id, property_id=row.property_id, detail=body.values())  # fmt: skip
    session.commit()
    return PolicyOut.model_validate(row)


@router.delete("/late-fee-policies/{policy_id}", status_code=204)
def delete_policy(
    policy_id: PathId,
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "path")],
    session: SessionDep,
    now: NowDep,
) -> Response:
    row = policy_for(session, me, policy_id, write=True)
    users = session.scalars(select(Lease.id).where(Lease.late_fee_policy_id == row.id)).all()
    if users:
        raise ProblemError(409, f"lease(s) {', '.join(map(str, users))} use this policy; "
                           "change their late-fee policy first")  # fmt: skip
    audit.record(session, me, "late_fee_policy.delete", now, target_type="late_fee_policy",
                 target_id=row.id, property_id=row.property_id)  # fmt: skip
    session.delete(row)
    session.commit()
    return Response(status_code=204)


def _effective(session: Session, lease: Lease) -> EffectiveOut:
    found = Policies.load(session, lease.property_id).for_lease(lease)
    if found is None:
        return EffectiveOut(lease_id=lease.id, source=None, policy=None)
    row, source = found
    return EffectiveOut(lease_id=lease.id, source=source, policy=PolicyOut.model_validate(row))


@router.get("/leases/{lease_id}/late-fee-policy")
def effective_policy(
    lease_id: PathId,
    me: Annotated[Principal, guard(P.BILLING_READ, "path")],
    session: SessionDep,
) -> EffectiveOut:
    """The rule that charges this lease's late fees: lease > property > org."""
    return _effective(session, scoped_get(session, me, Lease, lease_id))


def _replace_lease_rule(
    session: Session, me: Principal, lease: Lease, terms: PolicyTerms | None, now: datetime
) -> EffectiveOut:
    old = session.get(LateFeePolicyRow, lease.late_fee_policy_id or 0)
    lease.late_fee_policy_id = None
    if old is not None:  # a lease's rule is its own: no other lease points at it
        session.delete(old)
    if terms is not None:
        row = LateFeePolicyRow(org_id=me.org_id, property_id=lease.property_id, **terms.values())
        session.add(row)
        session.flush()
        lease.late_fee_policy_id = row.id
    session.flush()
    audit.record(session, me, "late_fee_policy.lease", now, target_type="lease",
                 target_id=lease.id, property_id=lease.property_id,
                 detail=terms.values() if terms else {"removed": True})  # fmt: skip
    session.commit()
    return _effective(session, lease)


@router.put("/leases/{lease_id}/late-fee-policy")
def set_lease_policy(
    lease_id: PathId,
    body: PolicyTerms,
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "path")],
    session: SessionDep,
    now: NowDep,
) -> EffectiveOut:
    """The lease's own rule, overriding the property's and the organisation's."""
    lease = scoped_get(session, me, Lease, lease_id)
    return _replace_lease_rule(session, me, lease, body, now)


@router.delete("/leases/{lease_id}/late-fee-policy")
def remove_lease_policy(
    lease_id: PathId,
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "path")],
    session: SessionDep,
    now: NowDep,
) -> EffectiveOut:
    """Drop the lease's own rule: the property's (or the organisation's) applies again."""
    lease = scoped_get(session, me, Lease, lease_id)
    return _replace_lease_rule(session, me, lease, None, now)


# ---- usage holds ------------------------------------------------------------------------


class HoldOut(Orm):
    id: int
    property_id: int
    lease_id: int
    meter_id: str  # "" for rent
    kind: HoldKind
    period_start: date
    period_end: date | None
    reason: str
    quantity: Decimal | None
    released: bool


class ReleaseIn(BaseModel):
    quantity: Quantity | None = Field(
        None, description="Bill this instead of the measured usage (required when no reading was "
        "usable).")  # fmt: skip
    note: str = Field(min_length=1, max_length=500, description="Why it is fine to bill.")


@router.get("/usage-holds")
def list_holds(
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "list")],
    session: SessionDep,
    property_id: PropertyQ = None,
    released: Annotated[bool | None, Query(description="Only released or held ones.")] = None,
    after: AfterQ = None,
    limit: LimitQ = 50,
) -> Page[HoldOut]:
    query = select(UsageHold).where(scope_filter(me, UsageHold.property_id, property_id))
    if released is not None:
        query = query.where(UsageHold.released == released)
    rows, nxt = fetch_page(session, query, UsageHold.id, after, limit)
    return Page(items=[HoldOut.model_validate(r) for r in rows], next_after=nxt)


@router.post("/usage-holds/{hold_id}/release")
def release_hold(
    hold_id: PathId,
    body: ReleaseIn,
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "path")],
    session: SessionDep,
    now: NowDep,
) -> HoldOut:
    """Bill the held usage (or the corrected quantity) in the next run of that month."""
    hold = scoped_get(session, me, UsageHold, hold_id)
    measured = hold.quantity
    try:
        holds.release(session, hold, body.quantity)
    except BillingError as exc:
        raise ProblemError(409, str(exc)) from None
    audit.record(session, me, "usage_hold.release", now, target_type="usage_hold",
                 target_id=hold.id, property_id=hold.property_id,
                 detail={"note": body.note, "measured": str(measured),
                         "billed": str(hold.quantity)})  # fmt: skip
    session.commit()
    return HoldOut.model_validate(hold)
