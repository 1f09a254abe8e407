"""Scheduled jobs: one instance per job and day, late fees, overdue reminders."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from cloud.app import create_app
from cloud.billing.service import accounts, fees, notify
from cloud.billing.service.runs import run_billing
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker
from cloud.jobs.billing import JobSettings, billing_jobs, run_month
from cloud.jobs.lock import try_acquire
from cloud.jobs.scheduler import Job, run_due, run_forever
from cloud.models import (
    BillingRun,
    Invoice,
    InvoiceLine,
    JobLock,
    LateFeePolicyRow,
    Lease,
    LineKind,
    Notification,
    PrepaidAccount,
    PrepaidEntry,
    TariffKind,
)
from cloud.security.crypto import development_keys
from tests.cloud.billing.world import TZ, World

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def test_two_instances_run_a_job_once_per_day(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(2)]
    runs: list[str] = []
    barrier = threading.Barrier(2)

    def work(session: Session, today: date, now: datetime) -> None:
        runs.append(f"{today}")

    job = Job("test-job", time(9, 0), work)

    def instance(n: int) -> None:
        barrier.wait(timeout=10)
        run_due(make_sessionmaker(engines[n]), [job], now=NOW, holder=f"i{n}", tz=TZ)

    try:
        threads = [threading.Thread(target=instance, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert runs == ["2026-03-01"]
        sessions = make_sessionmaker(engines[0])
        # the same day again: already done; the next day: runs again
        assert run_due(sessions, [job], now=NOW + timedelta(hours=1), holder="i0", tz=TZ) == []
        next_day = NOW + timedelta(days=1)
        assert run_due(sessions, [job], now=next_day, holder="i1", tz=TZ) == ["test-job"]
        # before 09:00 local nothing is due
        early = datetime(2026, 3, 5, 0, 0, tzinfo=UTC)  # 08:00 local
        assert run_due(sessions, [job], now=early, holder="i0", tz=TZ) == []
    finally:
        for e in engines:
            e.dispose()


def test_a_crashed_holder_frees_the_lock_when_its_time_runs_out(session: Session) -> None:
    hour = timedelta(hours=1)
    assert try_acquire(session, "j", key="d1", holder="a", now=NOW, ttl=hour)
    assert not try_acquire(session, "j", key="d1", holder="b", now=NOW, ttl=hour)
    assert try_acquire(session, "j", key="d1", holder="b", now=NOW + 2 * hour, ttl=hour)
    row = session.get(JobLock, "j")
    assert row is not None
    assert row.holder == "b"


def test_a_failing_job_is_retried_next_tick(database_url: str) -> None:
    engine = make_engine(database_url)
    calls: list[int] = []

    def flaky(session: Session, today: date, now: datetime) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")

    job = Job("flaky", time(0, 0), flaky)
    try:
        sessions = make_sessionmaker(engine)
        assert run_due(sessions, [job], now=NOW, holder="a", tz=TZ) == []
        assert run_due(sessions, [job], now=NOW, holder="a", tz=TZ) == ["flaky"]
        assert len(calls) == 2
    finally:
        engine.dispose()


async def test_a_tick_that_cannot_reach_the_database_does_not_stop_the_scheduler(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The lock table unreachable for one tick: logged, and the job runs on the next tick."""
    engine = make_engine(database_url)
    real = make_sessionmaker(engine)
    opened: list[int] = []
    ran = asyncio.Event()

    def sessions() -> Session:
        opened.append(1)
        if len(opened) == 1:
            raise OperationalError("SELECT 1", {}, Exception("database went away"))
        return real()

    def job(session: Session, today: date, now: datetime) -> None:
        ran.set()

    async def tick(_: float) -> None:
        await asyncio.sleep(0)

    jobs = [Job("j", time(0, 0), job)]
    task = asyncio.create_task(
        run_forever(sessions, jobs, clock=lambda: NOW, holder="a", tz=TZ, sleep=tick)
    )
    try:
        await asyncio.wait_for(ran.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        engine.dispose()
    assert "job tick failed" in caplog.text


def overdue_world(session: Session) -> tuple[World, Invoice]:
    w = World(session, "Late Org")
    unit = w.unit("B-201", "40")
    lease = w.lease(unit, date(2026, 1, 1), date(2026, 12, 31), rent=200000, deposit=0)
    run_billing(session, w.prop.id, "2026-01", now=NOW, tz=TZ)
    invoice = session.scalars(select(Invoice).where(Invoice.lease_id == lease.id)).first()
    assert invoice is not None
    return w, invoice


def test_late_fees_daily_percent_after_grace_with_cap(session: Session) -> None:
    w, invoice = overdue_world(session)
    assert invoice.due_date == date(2026, 1, 1)  # the first bill is due on the lease start
    session.add(  # organisation default: a fixed fee that the property's rule overrides
        LateFeePolicyRow(org_id=w.org.id, kind="fixed", amount_fen=99900)
    )
    session.add(
        LateFeePolicyRow(
            org_id=w.org.id,
            property_id=w.prop.id,
            kind="percent",
            rate="5/10000",
            mode="daily",
            grace_days=3,
            cap_fen=2500,
        )
    )
    session.flush()
    # due Jan 1, 3 grace days: nothing on the 4th, first fee on the 5th
    assert fees.charge_late_fees(session, w.prop.id, today=date(2026, 1, 4), now=NOW) == 0
    assert fees.charge_late_fees(session, w.prop.id, today=date(2026, 1, 5), now=NOW) == 1
    # 0.05 % of 2,000.00 = 1.00 per day on January's rent (February's is due Jan 25: not yet)
    charged = session.scalars(
        select(InvoiceLine.amount_fen).where(InvoiceLine.kind == LineKind.LATE_FEE)
    ).all()
    assert charged == [100]
    again = fees.charge_late_fees(session, w.prop.id, today=date(2026, 1, 5), now=NOW)
    assert again == 0  # same day: nothing more
    fees.charge_late_fees(session, w.prop.id, today=date(2026, 2, 28), now=NOW)
    total = session.scalar(select(func.sum(Invoice.late_fee_fen)).where(Invoice.id == invoice.id))
    assert total == 2500  # capped


def test_paid_invoices_get_no_fee_and_no_reminder(session: Session) -> None:
    w, invoice = overdue_world(session)
    session.add(LateFeePolicyRow(org_id=w.org.id, kind="fixed", amount_fen=5000))
    session.flush()
    lease = session.get(Lease, invoice.lease_id)
    assert lease is not None
    accounts.record_payment(session, lease, 400000, received_at=NOW)
    today = date(2026, 1, 10)
    assert fees.charge_late_fees(session, w.prop.id, today=today, now=NOW) == 0
    assert fees.queue_reminders(session, w.prop.id, today=today, now=NOW, email=False) == 0


def test_reminders_once_a_day_in_app_and_email_only_with_smtp(session: Session) -> None:
    w, _ = overdue_world(session)
    today = date(2026, 2, 1)
    assert fees.queue_reminders(session, w.prop.id, today=today, now=NOW, email=False) == 2
    fees.queue_reminders(session, w.prop.id, today=today, now=NOW, email=False)
    session.flush()
    notes = session.scalars(select(Notification)).all()
    assert len(notes) == 2
    assert {n.channel for n in notes} == {"in_app"}
    assert "逾期" in notes[0].subject
    assert notify.send_pending(session, now=NOW, smtp=None, addresses={}) == 2
    fees.queue_reminders(session, w.prop.id, today=today + timedelta(days=1), now=NOW, email=True)
    session.flush()
    assert notify.send_pending(session, now=NOW, smtp=None, addresses={}) == 2
    email = session.scalars(select(Notification).where(Notification.channel == "email")).all()
    assert [n.error for n in email] == ["no SMTP server configured"] * 2
    assert all(n.sent_at is None for n in email)


def test_the_monthly_billing_job_runs_every_property(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        sessions = make_sessionmaker(engine)
        with sessions() as session:
            w, _ = overdue_world(session)
            session.commit()
        jobs = billing_jobs(JobSettings(), tz=TZ)
        ran = run_due(sessions, jobs, now=NOW, holder="a", tz=TZ)
        assert ran == ["billing-run", "late-fees", "overdue-reminders", "prepaid-deduction"]
        with sessions() as session:
            periods = session.scalars(
                select(Invoice.number).where(Invoice.property_id == w.prop.id)
            ).all()
            assert any("2026-03" in p for p in periods)
    finally:
        engine.dispose()


async def test_the_app_runs_the_scheduler_when_asked(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANJU_JOBS_IN_PROCESS", "true")
    settings = Settings(env="development", database_url=database_url, ingest_in_process=False)
    app = create_app(settings, keys=development_keys(), clock=lambda: NOW)
    engine = make_engine(database_url)
    try:
        async with app.router.lifespan_context(app):
            for _ in range(200):  # the first tick runs at start-up; bounded wait for its commit
                with make_sessionmaker(engine)() as s:
                    done = s.scalars(select(JobLock.name).where(JobLock.last_key != "")).all()
                if len(done) == 5:
                    break
                await asyncio.sleep(0.05)
        assert sorted(done) == [
            "billing-run",
            "face-purge",
            "late-fees",
            "overdue-reminders",
            "prepaid-deduction",
        ]
    finally:
        engine.dispose()


def prepaid_world(session: Session) -> tuple[World, PrepaidAccount, str]:
    w = World(session, "Prepaid Job Org")
    unit = w.unit("P-101", "30")
    meter = w.meter("e-p101", unit)
    w.tariff([{"lower": "0", "upper": "", "price": "1.00"}], kind=TariffKind.FLAT)
    lease = w.lease(unit, date(2026, 1, 1), date(2026, 12, 31), rent=100000)
    account = PrepaidAccount(lease_id=lease.id, balance_fen=20000, last_readings={})
    session.add(account)
    for day, value in ((26, 100), (27, 130), (28, 150)):  # read before NOW (Mar 1, 10:00)
        w.read(meter, date(2026, 2, day), value)
    session.commit()
    return w, account, meter.code


def test_the_prepaid_job_deducts_each_reading_once_on_one_instance(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(2)]
    job = next(j for j in billing_jobs(JobSettings(), tz=TZ) if j.name == "prepaid-deduction")
    barrier = threading.Barrier(2)
    ran: list[list[str]] = []

    def instance(n: int, now: datetime) -> None:
        barrier.wait(timeout=10)
        ran.append(run_due(make_sessionmaker(engines[n]), [job], now=now, holder=f"i{n}", tz=TZ))

    def balance(sessions: Any, account_id: int) -> tuple[int, int]:
        with sessions() as s:
            entries = s.scalar(select(func.count()).where(PrepaidEntry.account_id == account_id))
            return s.get_one(PrepaidAccount, account_id).balance_fen, entries or 0

    try:
        sessions = make_sessionmaker(engines[0])
        with sessions() as session:
            w, account, meter_id = prepaid_world(session)
            account_id = account.id
        threads = [threading.Thread(target=instance, args=(n, NOW)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(ran) == [[], ["prepaid-deduction"]]
        # 100 -> 130 -> 150: 30 + 20 kWh at 1.00
        assert balance(sessions, account_id) == (20000 - 5000, 2)
        # later the same day: the job is done for today
        assert run_due(sessions, [job], now=NOW + timedelta(hours=3), holder="i0", tz=TZ) == []
        # the next day: only the new reading is charged
        with sessions() as session:
            w.s = session
            w.read(meter_id, date(2026, 3, 1), 190)
            session.commit()
        next_day = NOW + timedelta(days=1)
        assert run_due(sessions, [job], now=next_day, holder="i1", tz=TZ) == ["prepaid-deduction"]
        assert balance(sessions, account_id) == (20000 - 9000, 3)
    finally:
        for e in engines:
            e.dispose()


def test_a_month_bills_every_property_once_with_parallel_workers(database_url: str) -> None:
    engine = make_engine(database_url)
    workers = 2 if engine.dialect.name == "postgresql" else 1  # SQLite: one writer
    try:
        sessions = make_sessionmaker(engine)
        with sessions() as session:
            for n in range(4):
                w = World(session, f"Parallel Org {n}")
                for u in range(3):
                    w.lease(w.unit(f"Q-{u}", "30"), date(2026, 1, 1), date(2026, 12, 31),
                            rent=100000 + u)  # fmt: skip
            session.commit()
        lines = run_month(sessions, "2026-02", now=NOW, tz=TZ, workers=workers)
        with sessions() as session:
            stored = session.scalar(select(func.count()).select_from(InvoiceLine))
            runs = session.scalars(select(func.count()).select_from(BillingRun)).one()
        # deposit, January, February and March rent (due Feb 22) for 12 leases
        assert lines == stored == 12 * 4
        assert runs == 4
        assert run_month(sessions, "2026-02", now=NOW, tz=TZ, workers=workers) == 0
    finally:
        engine.dispose()


def test_a_leases_own_late_fee_rule_beats_the_property_default(session: Session) -> None:
    w, invoice = overdue_world(session)
    prop_rule = LateFeePolicyRow(
        org_id=w.org.id, property_id=w.prop.id, kind="fixed", amount_fen=5000
    )
    own = LateFeePolicyRow(org_id=w.org.id, property_id=w.prop.id, kind="fixed", amount_fen=777)
    session.add_all([prop_rule, own])
    session.flush()
    lease = session.get_one(Lease, invoice.lease_id)
    lease.late_fee_policy_id = own.id
    other_unit = w.unit("B-202", "40")
    other = w.lease(other_unit, date(2026, 1, 1), date(2026, 12, 31), rent=100000, deposit=0)
    run_billing(session, w.prop.id, "2026-01", now=NOW, tz=TZ)
    fees.charge_late_fees(session, w.prop.id, today=date(2026, 1, 10), now=NOW)
    charged = dict(
        session.execute(
            select(InvoiceLine.lease_id, InvoiceLine.amount_fen).where(
                InvoiceLine.kind == LineKind.LATE_FEE
            )
        ).all()
    )
    # the newer rule belongs to a lease, so it is not the property's default for the other lease
    assert charged == {lease.id: 777, other.id: 5000}
