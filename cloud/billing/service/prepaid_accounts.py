"""Prepaid utilities (预存) over the database: top-ups, and a deduction at each new reading.

Each reading after the last one charged costs its usage at the tariff (tiered prices count the
month's usage so far), recorded once per reading (the entry's dedupe key), so re-running is
harmless. Crossing the low-balance threshold queues one alert; an exhausted balance is reported
as a cut-off candidate only where the contract allows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.billing.consumption import quantity, usage
from cloud.billing.errors import BillingError, ReadingRejectedError
from cloud.billing.money import round_half_up, yuan
from cloud.billing.prepaid import deduct
from cloud.billing.service import notify
from cloud.billing.service.terms import tariff_price, utc
from cloud.meter_bindings import reading_of
from cloud.models import (
    Lease,
    Meter,
    PrepaidAccount,
    PrepaidEntry,
    Reading,
    Tariff,
    TariffKind,
)


@dataclass(frozen=True, slots=True)
class Charged:
    entries: int
    cutoff_leases: list[int]


def top_up(
    session: Session, account: PrepaidAccount, amount: int, *, reference: str, now: datetime
) -> PrepaidEntry:
    if amount <= 0:
        raise BillingError("a top-up must be positive")
    account.balance_fen += amount
    entry = PrepaidEntry(
        account_id=account.id,
        amount_fen=amount,
        balance_after_fen=account.balance_fen,
        description=f"Top-up {yuan(amount)}",
        dedupe_key=f"topup:{reference}",
        created_at=now,
    )
    session.add(entry)
    session.flush()
    return entry


def charge_readings(session: Session, property_id: int, *, now: datetime, tz: ZoneInfo) -> Charged:
    """`tz` (ANJU_TIMEZONE) decides which month a reading's usage counts in (tiers are
    monthly)."""
    rows = session.execute(
        select(PrepaidAccount, Lease)
        .join(Lease, Lease.id == PrepaidAccount.lease_id)
        .where(Lease.property_id == property_id)
    ).all()
    today = now.astimezone(tz).date()
    tariffs = {
        t.utility: t
        for t in session.scalars(
            select(Tariff)
            .where(Tariff.property_id == property_id, Tariff.effective_from <= today)
            .order_by(Tariff.effective_from)
        )
        if t.kind is not TariffKind.TIME_OF_USE
    }
    entries, cutoff = 0, []
    for account, lease in rows:
        meters = session.scalars(select(Meter).where(Meter.unit_id == lease.unit_id)).all()
        for meter in meters:
            tariff = tariffs.get(meter.utility)
            if tariff is not None:
                entries += _charge_meter(
                    session, account, lease, meter=meter, tariff=tariff, now=now, tz=tz
                )
        if account.cutoff_allowed and account.balance_fen <= 0:
            cutoff.append(lease.id)
    session.flush()
    return Charged(entries, cutoff)


def _charge_meter(
    session: Session,
    account: PrepaidAccount,
    lease: Lease,
    *,
    meter: Meter,
    tariff: Tariff,
    now: datetime,
    tz: ZoneInfo,
) -> int:
    state = dict(account.last_readings.get(meter.code) or {})
    query = (
        select(Reading)
        .where(
            reading_of(meter),
            Reading.point == tariff.point,
            Reading.quality == "good",
            Reading.value.is_not(None),  # a text reading is no quantity
            Reading.ts <= now,
        )
        .order_by(Reading.ts, Reading.id)
    )
    if state:
        query = query.where(Reading.ts > datetime.fromisoformat(state["ts"]))
    count = 0
    for reading in session.scalars(query):
        if reading.value is None:
            continue
        value = quantity(reading.value)
        ts = utc(reading.ts)
        month = f"{ts.astimezone(tz):%Y-%m}"
        if not state:  # the first reading is the starting point, not usage
            state = {"value": str(value), "ts": ts.isoformat(), "month": month, "used": "0"}
            continue
        try:
            used = usage(Decimal(state["value"]), value, digits=meter.digits).quantity
        except ReadingRejectedError:
            continue  # left for an operator; the billing run flags the same reading
        prior = Decimal(state["used"]) if state["month"] == month else Decimal(0)
        cost = _cost(tariff, used, prior)
        result = deduct(
            account.balance_fen,
            cost,
            low_threshold=account.low_threshold_fen,
            cutoff_allowed=account.cutoff_allowed,
        )
        account.balance_fen = result.balance
        session.add(
            PrepaidEntry(
                account_id=account.id,
                amount_fen=-cost,
                balance_after_fen=result.balance,
                description=f"{meter.utility} {meter.code}: {state['value']} -> {value} = {used}",
                dedupe_key=f"reading:{reading.id}",
                created_at=now,
            )
        )
        if result.crossed_low:
            notify.queue(
                session,
                dedupe_key=f"low:{account.id}:{reading.id}",
                kind="low_balance",
                subject="预存余额不足 / Prepaid balance low",
                body=f"余额 ¥{yuan(result.balance)}。Balance ¥{yuan(result.balance)}.",
                now=now,
                tenant_id=lease.primary_tenant_id,
                lease_id=lease.id,
                email=False,
            )
        state = {
            "value": str(value),
            "ts": ts.isoformat(),
            "month": month,
            "used": str(prior + used),
        }
        count += 1
    account.last_readings = {**account.last_readings, meter.code: state}
    return count


def _cost(tariff: Tariff, used: Decimal, prior: Decimal) -> int:
    """The increment's cost: month-to-date tiered cost after it minus before it."""
    if tariff.kind is TariffKind.FLAT:
        return tariff_price(tariff, used).amount
    after = sum((p.cost for p in tariff_price(tariff, prior + used).parts), Fraction(0))
    before = sum((p.cost for p in tariff_price(tariff, prior).parts), Fraction(0))
    return round_half_up(after - before)
