"""Billing API: tariffs, billing runs, invoices (JSON and PDF), payments, reversals, deposit
settlements, lease accounts and reports (JSON or CSV). The rules live in `cloud.billing`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.api.deps import (
    NowDep,
    SessionDep,
    guard,
    lease_parties,
    not_found,
    require_property,
    scoped_get,
    tenant_lease_filter,
)
from cloud.api.paging import (
    AfterQ,
    BodyId,
    IdQ,
    KeyCursorQ,
    LimitQ,
    Page,
    PathId,
    decode_key,
    encode_key,
    fetch_page,
)
from cloud.api.problems import ProblemError
from cloud.api.progress import ProgressOut, latest
from cloud.api.scope import PropertyQ, scope_filter
from cloud.billing.bounds import (
    FIRST_DAY,
    LAST_DAY,
    BasisPoints,
    Day,
    Fen,
    PositiveFen,
    Price,
    Quantity,
    SpikeMultiple,
)
from cloud.billing.deposits import Deduction, DeductionKind
from cloud.billing.errors import BillingError
from cloud.billing.invoice_pdf import LANGUAGES, invoice_pdf
from cloud.billing.service import accounts, reports, settlement
from cloud.billing.service.runs import run_billing
from cloud.billing.service.terms import Month, check_tariff
from cloud.contracts.fonts import find_fonts
from cloud.models import (
    BillingRun,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Lease,
    LineKind,
    Payment,
    Property,
    Tariff,
    TariffKind,
    Tenant,
    Unit,
    Utility,
)
from cloud.progress import BOARD, billing_key
from cloud.security import audit
from cloud.security.authz import Permission, Principal
from protocols.errors import ConfigError

router = APIRouter(tags=["billing"])
P = Permission
RequiredProperty = Annotated[int, Query(ge=1, le=2**31 - 1, description="The property.")]
DayQ = Annotated[date | None, Query(ge=FIRST_DAY, le=LAST_DAY)]


class Orm(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def refused(exc: BillingError) -> ProblemError:
    return ProblemError(422, str(exc))


@contextmanager
def conflict() -> Iterator[None]:
    """What the account's state forbids (already settled, reversed, too much) is a 409."""
    try:
        yield
    except BillingError as exc:
        raise ProblemError(409, str(exc)) from None


# ---- tariffs ----------------------------------------------------------------------------


class TierIn(BaseModel):
    """A tier (tiered, flat: one row from 0) or a time-of-use zone (zone, point, price)."""

    lower: Quantity = Decimal(0)
    upper: Quantity | None = None
    price: Price
    zone: str | None = Field(None, max_length=32, description="Time-of-use: the zone name.")
    point: str | None = Field(
        None, max_length=64, description="Time-of-use: the meter's register for this zone."
    )


class TariffIn(BaseModel):
    property_id: BodyId
    utility: Utility
    effective_from: Day
    kind: TariffKind = TariffKind.TIERED
    tiers: list[TierIn] = Field(min_length=1, max_length=12)
    point: str = Field("import_energy", max_length=64)
    common_basis: str = Field("area", pattern="^(area|occupants|equal|usage)$")
    common_price: Price = Decimal(0)
    owner_share_bp: BasisPoints = Field(
        0,
        description="RUBS: basis points (0..10,000) of the common-area cost the owner absorbs "
        "before the basis shares the rest; vacant units' shares go to the owner too.",
    )
    spike_multiple: SpikeMultiple = Decimal(3)


class TariffOut(Orm):
    id: int
    property_id: int
    utility: Utility
    effective_from: date
    kind: TariffKind
    tiers: list[dict[str, str]]
    point: str
    common_basis: str
    common_price: str
    owner_share_bp: int
    spike_multiple: str


@router.get("/tariffs")
def list_tariffs(
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "list")],
    session: SessionDep,
    property_id: PropertyQ = None,
    after: AfterQ = None,
    limit: LimitQ = 50,
) -> Page[TariffOut]:
    query = select(Tariff).where(scope_filter(me, Tariff.property_id, property_id))
    rows, nxt = fetch_page(session, query, Tariff.id, after, limit)
    return Page(items=[TariffOut.model_validate(r) for r in rows], next_after=nxt)


@router.post("/tariffs", status_code=201)
def create_tariff(
    body: TariffIn,
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "body")],
    session: SessionDep,
) -> TariffOut:
    require_property(me, body.property_id)
    if body.kind is TariffKind.TIME_OF_USE:
        tiers = [{"zone": t.zone or "", "point": t.point or "", "price": str(t.price)}
                 for t in body.tiers]  # fmt: skip
    else:
        tiers = [
            {"lower": str(t.lower), "upper": "" if t.upper is None else str(t.upper),
             "price": str(t.price)}
            for t in body.tiers
        ]  # fmt: skip
    tariff = Tariff(
        property_id=body.property_id,
        utility=body.utility,
        effective_from=body.effective_from,
        kind=body.kind,
        tiers=tiers,
        point=body.point,
        common_basis=body.common_basis,
        common_price=str(body.common_price),
        owner_share_bp=body.owner_share_bp,
        spike_multiple=str(body.spike_multiple),
    )
    session.add(tariff)
    try:
        check_tariff(tariff)  # zones with a register each, tiers chained from 0, the bounds
        session.flush()
    except BillingError as exc:
        raise refused(exc) from None
    except IntegrityError:
        raise ProblemError(
            409, f"a {body.utility} tariff from {body.effective_from} exists for this property"
        ) from None
    session.commit()
    return TariffOut.model_validate(tariff)


# ---- billing runs -----------------------------------------------------------------------


class RunIn(BaseModel):
    property_id: BodyId
    period: str = Field(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM: that month's rent, "
                        "the month before's utilities.")  # fmt: skip


class Skipped(BaseModel):
    lease_id: int | None  # None: a tariff or a building's common area
    item: str  # "rent", "back rent", "electricity meter e-101", "electricity tariff 3", ...
    reason: str


class RunOut(Orm):
    id: int
    property_id: int
    period: str
    started_at: datetime
    finished_at: datetime | None
    invoices_created: int
    lines_created: int
    operator_cost_fen: int
    utility_cost_fen: int
    flags: list[str]
    skipped: list[Skipped] = Field(description="What the latest attempt left out, and why.")
    progress: ProgressOut | None = Field(
        default=None, description="The latest attempt's progress, if this process ran it."
    )

    @classmethod
    def of(cls, run: BillingRun) -> RunOut:
        return cls.model_validate(run).model_copy(
            update={"progress": progress_of(run.property_id, run.period)}
        )


def progress_of(property_id: int, period: str) -> ProgressOut | None:
    return latest(billing_key(property_id, period))


@router.post("/billing-runs")
def start_run(
    request: Request,
    body: RunIn,
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "body")],
    session: SessionDep,
    now: NowDep,
) -> RunOut:
    """Idempotent: running a period again bills only what is not billed yet. A lease, meter
    or tariff that cannot be billed is listed in `skipped` (and held for review); the rest is
    billed."""
    require_property(me, body.property_id)
    back = request.app.state.settings.billing_max_back_months
    try:
        period = str(Month.parse(body.period))
    except BillingError as exc:
        raise refused(exc) from None
    with BOARD.track(billing_key(body.property_id, period)) as progress:
        try:
            run = run_billing(session, body.property_id, period, now=now,
                              tz=request.app.state.settings.zone, max_back_months=back,
                              progress=progress)  # fmt: skip
        except BillingError as exc:
            raise refused(exc) from None
        audit.record(session, me, "billing.run", now, target_type="billing_run",
                     target_id=run.id, property_id=body.property_id,
                     detail={"period": body.period})  # fmt: skip
        session.commit()
    return RunOut.of(run)


@router.get("/billing-runs/progress")
def run_progress(
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "body")],
    property_id: RequiredProperty,
    period: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
) -> ProgressOut | None:
    """How far the property's run for `period` has got while it runs (its invoices appear
    only when it commits), and how its latest attempt ended; null if none has run in this
    process since it started."""
    require_property(me, property_id)
    return progress_of(property_id, period)


@router.get("/billing-runs")
def list_runs(
    me: Annotated[Principal, guard(P.BILLING_MANAGE, "list")],
    session: SessionDep,
    property_id: PropertyQ = None,
    after: AfterQ = None,
    limit: LimitQ = 50,
) -> Page[RunOut]:
    query = select(BillingRun).where(scope_filter(me, BillingRun.property_id, property_id))
    rows, nxt = fetch_page(session, query, BillingRun.id, after, limit)
    return Page(items=[RunOut.of(r) for r in rows], next_after=nxt)


# ---- invoices ---------------------------------------------------------------------------


class LineOut(Orm):
    id: int
    kind: LineKind
    meter_key: str
    period_start: date
    period_end: date
    amount_fen: int
    description: str
    utility: str | None
    previous_reading: Decimal | None
    current_reading: Decimal | None
    quantity: Decimal | None
    detail: dict[str, Any]


class InvoiceOut(Orm):
    id: int
    number: str
    property_id: int
    lease_id: int
    issue_date: date
    due_date: date
    total_fen: int
    paid_fen: int
    status: InvoiceStatus
    late_fee_fen: int


class InvoiceDetail(InvoiceOut):
    lines: list[LineOut]


def invoice_for(session: Session, me: Principal, invoice_id: int) -> Invoice:
    """An invoice the caller may see: staff by property, a tenant by being a party."""
    invoice = session.get(Invoice, invoice_id)
    if invoice is not None:
        if me.is_tenant:
            lease = session.get(Lease, invoice.lease_id)
            if lease is not None and me.tenant_id in lease_parties(session, lease):
                return invoice
        elif me.sees_property(invoice.property_id):
            return invoice
    raise not_found("invoice", invoice_id)


def pdf_fonts(request: Request) -> tuple[Path, Path]:
    try:
        return find_fonts(request.app.state.settings.cjk_font)
    except ConfigError as exc:
        raise ProblemError(503, str(exc)) from None


def invoice_lines(session: Session, invoice: Invoice) -> list[InvoiceLine]:
    return list(
        session.scalars(
            select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)
        )
    )


@router.get("/invoices")
def list_invoices(
    me: Annotated[Principal, guard(P.BILLING_READ, "list")],
    session: SessionDep,
    property_id: PropertyQ = None,
    lease_id: IdQ = None,
    status: InvoiceStatus | None = None,
    after: AfterQ = None,
    limit: LimitQ = 50,
) -> Page[InvoiceOut]:
    query = select(Invoice)
    if me.is_tenant:
        own = select(Lease.id).where(tenant_lease_filter(me.tenant_id or 0))
        query = query.where(Invoice.lease_id.in_(own))
    else:
        query = query.where(scope_filter(me, Invoice.property_id, property_id))
    if lease_id is not None:
        query = query.where(Invoice.lease_id == lease_id)
    if status is not None:
        query = query.where(Invoice.status == status)
    rows, nxt = fetch_page(session, query, Invoice.id, after, limit)
    return Page(items=[InvoiceOut.model_validate(r) for r in rows], next_after=nxt)


@router.get("/invoices/{invoice_id}")
def get_invoice(
    invoice_id: PathId,
    me: Annotated[Principal, guard(P.BILLING_READ, "path")],
    session: SessionDep,
) -> InvoiceDetail:
    invoice = invoice_for(session, me, invoice_id)
    lines = [LineOut.model_validate(x) for x in invoice_lines(session, invoice)]
    return InvoiceDetail(**InvoiceOut.model_validate(invoice).model_dump(), lines=lines)


@router.get(
    "/invoices/{invoice_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def invoice_as_pdf(
    request: Request,
    invoice_id: PathId,
    me: Annotated[Principal, guard(P.BILLING_READ, "path")],
    session: SessionDep,
    lang: Annotated[str, Query(pattern="^(zh-CN|en)$")] = "zh-CN",
) -> Response:
    invoice = invoice_for(session, me, invoice_id)
    lease = session.get_one(Lease, invoice.lease_id)
    pdf = invoice_pdf(
        invoice,
        invoice_lines(session, invoice),
        language=lang if lang in LANGUAGES else "en",
        property_name=session.get_one(Property, invoice.property_id).name,
        unit_code=session.get_one(Unit, lease.unit_id).code,
        tenant_name=session.get_one(Tenant, lease.primary_tenant_id).name,
        fonts=pdf_fonts(request),
    )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{invoice.number}.pdf"'},
    )


# ---- payments and the lease account -----------------------------------------------------


# When a payment came in: with its zone (a naive time means nothing stored as an instant),
# within the days billing takes.
ReceivedAt = Annotated[
    AwareDatetime,
    Field(
        ge=datetime.combine(FIRST_DAY, time(), UTC), le=datetime.combine(LAST_DAY, time.max, UTC)
    ),
]


class DepositPaymentIn(BaseModel):
    """A payment received, on a lease named elsewhere (the path, or PaymentIn)."""

    amount_fen: PositiveFen
    method: str = Field("transfer", max_length=24)
    reference: str = Field("", max_length=100)
    received_at: ReceivedAt | None = None


class PaymentIn(DepositPaymentIn):
    lease_id: BodyId


class PaymentOut(Orm):
    id: int
    lease_id: int
    amount_fen: int
    received_at: datetime
    method: str
    reference: str
    reverses_id: int | None
    deposit: bool


class AccountOut(BaseModel):
    lease_id: int
    balance_fen: int  # owed; negative = credit
    credit_fen: int  # paid but not yet applied to an invoice
    open_invoices: int
    deposit_fen: int = Field(description="The lease's deposit.")
    deposit_billed_fen: int = Field(description="What of the deposit its bills have charged.")
    deposit_received_fen: int = Field(description="What of the deposit has been received.")
    deposit_settled: bool


class ReversalIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


@router.post("/payments", status_code=201)
def record_payment(
    body: PaymentIn,
    me: Annotated[Principal, guard(P.PAYMENTS_WRITE, "body")],
    session: SessionDep,
    now: NowDep,
) -> PaymentOut:
    lease = scoped_get(session, me, Lease, body.lease_id)
    return _book(session, me, now, lease, body, deposit=False)


def _book(
    session: Session,
    me: Principal,
    now: datetime,
    lease: Lease,
    body: DepositPaymentIn,
    *,
    deposit: bool,
) -> PaymentOut:
    """A payment received (the deposit's, or any), audited and committed."""
    terms: dict[str, Any] = {
        "received_at": body.received_at or now, "method": body.method, "reference": body.reference
    }  # fmt: skip
    with conflict():
        if deposit:
            payment = settlement.receive_deposit(session, lease, body.amount_fen, **terms)
        else:
            payment = accounts.record_payment(session, lease, body.amount_fen, **terms)
    audit.record(session, me, "deposit.receive" if deposit else "payment.record", now,
                 target_type="payment", target_id=payment.id, property_id=lease.property_id,
                 detail={"amount_fen": body.amount_fen})  # fmt: skip
    session.commit()
    return PaymentOut.model_validate(payment)


@router.post("/payments/{payment_id}/reversal", status_code=201)
def reverse_payment(
    payment_id: PathId,
    body: ReversalIn,
    me: Annotated[Principal, guard(P.PAYMENTS_REFUND, "path")],
    session: SessionDep,
    now: NowDep,
) -> PaymentOut:
    payment = scoped_get(session, me, Payment, payment_id)
    with conflict():
        reversal = accounts.reverse_payment(session, payment, at=now, note=body.reason)
    audit.record(session, me, "payment.reverse", now, target_type="payment",
                 target_id=payment.id, property_id=payment.property_id,
                 detail={"reason": body.reason, "amount_fen": payment.amount_fen})  # fmt: skip
    session.commit()
    return PaymentOut.model_validate(reversal)


@router.get("/leases/{lease_id}/account")
def lease_account(
    lease_id: PathId,
    me: Annotated[Principal, guard(P.BILLING_READ, "path")],
    session: SessionDep,
) -> AccountOut:
    lease = scoped_get(session, me, Lease, lease_id)
    open_count = len(
        session.scalars(
            select(Invoice.id).where(
                Invoice.lease_id == lease.id, Invoice.status == InvoiceStatus.OPEN
            )
        ).all()
    )
    return AccountOut(
        lease_id=lease.id,
        balance_fen=accounts.balance(session, lease.id),
        credit_fen=accounts.unapplied(session, [lease.id]).get(lease.id, 0),
        open_invoices=open_count,
        deposit_fen=lease.deposit_fen,
        deposit_billed_fen=settlement.deposit_held(session, lease.id),
        deposit_received_fen=settlement.deposit_received(session, lease.id),
        deposit_settled=settlement.is_settled(session, lease.id),
    )


@router.post("/leases/{lease_id}/deposit-payments", status_code=201)
def receive_deposit(
    lease_id: PathId,
    body: DepositPaymentIn,
    me: Annotated[Principal, guard(P.PAYMENTS_REFUND, "path")],
    session: SessionDep,
    now: NowDep,
) -> PaymentOut:
    """The deposit received (at most what the lease's deposit has left; none once settled).
    It is a payment on the account and is counted as the deposit the lease holds."""
    lease = scoped_get(session, me, Lease, lease_id)
    return _book(session, me, now, lease, body, deposit=True)


class DeductionIn(BaseModel):
    kind: DeductionKind
    amount_fen: Fen
    reason: str = Field(min_length=1, max_length=300)


class SettlementIn(BaseModel):
    on: Day | None = None
    deductions: list[DeductionIn] = Field(default_factory=list, max_length=50)


class SettlementOut(BaseModel):
    lease_id: int
    deposit_fen: int
    refund_fen: int
    final_bill_fen: int
    deductions: list[dict[str, Any]]
    invoice_id: int | None


@router.post("/leases/{lease_id}/deposit-settlement", status_code=201)
def settle_deposit(
    request: Request,
    lease_id: PathId,
    body: SettlementIn,
    me: Annotated[Principal, guard(P.PAYMENTS_REFUND, "path")],
    session: SessionDep,
    now: NowDep,
) -> SettlementOut:
    lease = scoped_get(session, me, Lease, lease_id)
    deductions = [Deduction(d.kind, d.amount_fen, d.reason) for d in body.deductions]
    on = body.on or now.astimezone(request.app.state.settings.zone).date()
    with conflict():
        _, row = settlement.settle(session, lease, deductions, on=on, now=now)
    audit.record(session, me, "deposit.settle", now, target_type="lease", target_id=lease.id,
                 property_id=lease.property_id,
                 detail={"refund_fen": row.refund_fen,
                         "final_bill_fen": row.final_bill_fen})  # fmt: skip
    session.commit()
    return SettlementOut(
        lease_id=lease.id, deposit_fen=row.deposit_fen, refund_fen=row.refund_fen,
        final_bill_fen=row.final_bill_fen, deductions=row.deductions,
        invoice_id=row.final_invoice_id,
    )  # fmt: skip


# ---- reports ----------------------------------------------------------------------------


class ReportName(StrEnum):
    RENT_ROLL = "rent-roll"
    AR_AGING = "ar-aging"
    COLLECTION_RATE = "collection-rate"
    REVENUE = "revenue"
    UTILITY_RECOVERY = "utility-recovery"


class RentRollRow(BaseModel):
    unit: str
    lease_id: int
    tenant: str
    start: date
    end: date
    monthly_rent_fen: int
    deposit_fen: int
    cycle_months: int
    balance_fen: int = Field(description="What the lease's open invoices still owe.")


class RentRollTotals(BaseModel):
    leases: int
    monthly_rent_fen: int
    balance_fen: int


class RentRollPage(BaseModel):
    as_of: date
    items: list[RentRollRow]
    next_after: str | None
    totals: RentRollTotals = Field(description="The whole rent roll's, on every page.")


@router.get("/rent-roll")
def rent_roll(
    *,
    property_id: RequiredProperty,
    as_of: DayQ = None,
    after: KeyCursorQ = None,
    limit: LimitQ = 50,
    me: Annotated[Principal, guard(P.REPORTS_READ, "body")],
    session: SessionDep,
    now: NowDep,
    request: Request,
) -> RentRollPage:
    """The rent roll (the report `rent-roll`) a page at a time, by unit code then lease,
    paged in the database; page with `after=<next_after>`. Its CSV is the report's."""
    require_property(me, property_id)
    day = as_of or now.astimezone(request.app.state.settings.zone).date()
    key = decode_key(after) if after is not None else None
    rows, nxt = reports.rent_roll_page(session, property_id, day, key, limit)
    return RentRollPage(
        as_of=day,
        items=[RentRollRow.model_validate(r) for r in rows],
        next_after=encode_key(*nxt) if nxt is not None else None,
        totals=RentRollTotals.model_validate(reports.rent_roll_totals(session, property_id, day)),
    )


@router.get("/reports/{name}", responses={200: {"content": {"text/csv": {}}}})
def report(
    request: Request,
    name: ReportName,
    me: Annotated[Principal, guard(P.REPORTS_READ, "body")],
    session: SessionDep,
    now: NowDep,
    property_id: RequiredProperty,
    as_of: DayQ = None,
    start: DayQ = None,
    end: DayQ = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Any:
    require_property(me, property_id)
    today = now.astimezone(request.app.state.settings.zone).date()
    rows: list[dict[str, Any]]
    if name is ReportName.RENT_ROLL:
        rows = reports.rent_roll(session, property_id, as_of or today)
    elif name is ReportName.AR_AGING:
        rows = reports.ar_aging(session, property_id, as_of or today)
    elif name is ReportName.COLLECTION_RATE:
        first = start or date(today.year, 1, 1)
        rows = [reports.collection_rate(session, property_id, first, end or today)]
    elif name is ReportName.REVENUE:
        org_id = session.get_one(Property, property_id).org_id
        rows = [
            r
            for r in reports.revenue_by_property_month(session, org_id, year or today.year)
            if r["property_id"] == property_id
        ]
    else:
        rows = reports.utility_cost_vs_recovered(session, property_id)
    if format == "csv":
        return Response(
            reports.to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return {"items": rows}
