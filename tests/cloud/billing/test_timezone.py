"""One calendar: ANJU_TIMEZONE decides which local day, so which month, a reading bills in."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.billing.service.prepaid_accounts import charge_readings
from cloud.billing.service.runs import run_billing
from cloud.config import load_settings
from cloud.models import InvoiceLine, Lease, LineKind, Meter, PrepaidAccount, TariffKind
from protocols.errors import ConfigError
from tests.cloud.billing.world import World

NOW = datetime(2026, 2, 10, 2, 0, tzinfo=UTC)
FLAT = [{"lower": "0", "upper": "", "price": "1.00"}]
# 02:00Z on Feb 1 is 21:00 on Jan 31 in New York (and 10:00 on Feb 1 in Shanghai).
FEB_1_0200Z = datetime(2026, 2, 1, 2, 0, tzinfo=UTC)
JAN_1_NY = datetime(2026, 1, 1, 4, 0, tzinfo=UTC)  # 23:00 on Dec 31 in New York


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANJU_TIMEZONE", "America/New_York")
    monkeypatch.delenv("ANJU_JOBS_TIMEZONE", raising=False)


def one_unit(session: Session) -> tuple[World, Meter, Lease]:
    w = World(session)
    unit = w.unit("NY-1", "40")
    meter = w.meter("e-ny", unit)
    w.tariff(FLAT, kind=TariffKind.FLAT)
    return w, meter, w.lease(unit, date(2026, 1, 1), date(2026, 12, 31), rent=100000)


@pytest.mark.usefixtures("new_york")
def test_a_reading_early_on_the_1st_utc_bills_in_the_previous_local_month(
    session: Session,
) -> None:
    tz = load_settings(env="development").zone
    w, meter, lease = one_unit(session)
    w.read(meter, date(2026, 1, 1), 1000, at=JAN_1_NY)
    w.read(meter, date(2026, 2, 1), 1100, at=FEB_1_0200Z)
    session.flush()
    run_billing(session, w.prop.id, "2026-01", now=NOW, tz=tz)
    run = run_billing(session, w.prop.id, "2026-02", now=NOW, tz=tz)
    assert run.skipped == []
    (line,) = session.scalars(
        select(InvoiceLine).where(
            InvoiceLine.lease_id == lease.id, InvoiceLine.kind == LineKind.UTILITY
        )
    )
    assert (line.period_start, line.period_end) == (date(2026, 1, 1), date(2026, 1, 31))
    assert (line.previous_reading, line.current_reading, line.amount_fen) == (1000, 1100, 10000)


@pytest.mark.usefixtures("new_york")
def test_prepaid_counts_it_in_the_previous_local_month_too(session: Session) -> None:
    tz = load_settings(env="development").zone
    w, meter, lease = one_unit(session)
    account = PrepaidAccount(lease_id=lease.id, balance_fen=100000, low_threshold_fen=0,
                             cutoff_allowed=False, last_readings={})  # fmt: skip
    session.add(account)
    w.read(meter, date(2026, 1, 31), 1000, at=datetime(2026, 1, 31, 12, 0, tzinfo=UTC))
    w.read(meter, date(2026, 2, 1), 1100, at=FEB_1_0200Z)
    session.flush()
    assert charge_readings(session, w.prop.id, now=NOW, tz=tz).entries == 1
    assert account.last_readings[meter.code]["month"] == "2026-01"


def test_a_second_jobs_timezone_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANJU_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("ANJU_JOBS_TIMEZONE", "Europe/Berlin")
    with pytest.raises(ConfigError) as refused:
        load_settings(env="development")
    assert str(refused.value) == (
        "ANJU_JOBS_TIMEZONE: 'Europe/Berlin' differs from ANJU_TIMEZONE 'Asia/Shanghai';"
        " billing and its jobs use ANJU_TIMEZONE alone: unset ANJU_JOBS_TIMEZONE"
    )
    monkeypatch.setenv("ANJU_JOBS_TIMEZONE", "Asia/Shanghai")  # the same zone: harmless
    assert load_settings(env="development").timezone == "Asia/Shanghai"


def test_an_unknown_timezone_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANJU_TIMEZONE", "Mars/Olympus_Mons")
    with pytest.raises(ConfigError, match=r"^ANJU_TIMEZONE: 'Mars/Olympus_Mons' is not an IANA"):
        load_settings(env="development")
