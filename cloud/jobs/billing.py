"""The billing jobs: the monthly run, daily late fees, overdue reminders (and sending them),
prepaid deduction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.billing.bounds import MAX_BACK_MONTHS
from cloud.billing.service import fees, notify, prepaid_accounts
from cloud.billing.service.runs import run_billing
from cloud.jobs.history import Counts
from cloud.jobs.scheduler import Job
from cloud.models import BillingRun, Property
from cloud.progress import BOARD, billing_key
from cloud.security.crypto import FieldKeys

log = logging.getLogger(__name__)


class JobSettings(BaseSettings):
    """`ANJU_JOBS_*` and `ANJU_SMTP_*`: when the jobs run, and where email goes."""

    model_config = SettingsConfigDict(env_prefix="ANJU_", extra="ignore", frozen=True)

    jobs_in_process: bool = False  # run the scheduler inside `anju cloud serve`
    jobs_billing_day: int = 1
    jobs_billing_workers: int = 1  # properties billed at once on PostgreSQL (SQLite: always 1)
    jobs_billing_at: time = time(2, 0)
    jobs_late_fees_at: time = time(1, 0)
    jobs_reminders_at: time = time(9, 0)
    jobs_prepaid_at: time = time(3, 0)
    jobs_face_purge_at: time = time(3, 0)
    # Days an ended access keeps its face embeddings (a renewal's gap); 0 = purge at once.
    jobs_face_purge_grace_days: int = Field(default=7, ge=0, le=365)
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_sender: str = "anju@localhost"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False

    def smtp(self) -> notify.Smtp | None:
        if not self.smtp_host:
            return None
        return notify.Smtp(
            self.smtp_host,
            self.smtp_port,
            self.smtp_sender,
            self.smtp_username,
            self.smtp_password,
            self.smtp_starttls,
        )


def property_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Property.id).order_by(Property.id)))


def run_month(
    sessions: sessionmaker[Any],
    period: str,
    *,
    now: datetime,
    tz: ZoneInfo,
    workers: int = 1,
    max_back_months: int = MAX_BACK_MONTHS,
) -> int:
    """Every property's billing run for `period`, each in its own committed transaction (a
    crash resumes where it stopped: the runs are idempotent), `workers` at a time; logs how far
    it has got, and what each run skipped. Returns the lines created.

    Workers are threads sharing the engine's pool; they pay only while a run waits on the
    database, so only with a database server of its own (docs/billing.md, Performance).
    SQLite takes one writer: always 1 worker.
    """
    with sessions() as session:
        ids = property_ids(session)

    def one(property_id: int) -> int:
        with sessions() as session:
            before = session.scalar(
                select(BillingRun.lines_created).where(
                    BillingRun.property_id == property_id, BillingRun.period == period
                )
            )
            with BOARD.track(billing_key(property_id, period)) as progress:
                run = run_billing(session, property_id, period, now=now, tz=tz,
                                  max_back_months=max_back_months, progress=progress)  # fmt: skip
                session.commit()
            for item in run.skipped:
                log.warning(
                    "billing-run %s property %s: skipped lease %s %s: %s",
                    period,
                    property_id,
                    item["lease_id"],
                    item["item"],
                    item["reason"],
                )
            return run.lines_created - (before or 0)

    started, lines = monotonic(), 0
    every = max(1, len(ids) // 20)  # about 20 progress lines however many properties
    pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix=f"billing-run-{period}")
    try:
        for n, created in enumerate(pool.map(one, ids), 1):
            lines += created
            log.log(
                logging.INFO if n % every == 0 or n == len(ids) else logging.DEBUG,
                "billing-run %s: %d/%d properties, %d lines, %.1f s",
                period,
                n,
                len(ids),
                lines,
                monotonic() - started,
            )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return lines


def billing_jobs(
    settings: JobSettings,
    keys: FieldKeys | None = None,
    *,
    tz: ZoneInfo,
    max_back_months: int = MAX_BACK_MONTHS,
) -> list[Job]:
    """`keys` decrypt tenants' email addresses for the reminders (none: in-app only); `tz`
    and `max_back_months` are the cloud's ANJU_TIMEZONE and ANJU_BILLING_MAX_BACK_MONTHS."""

    def monthly_run(session: Session, today: date, now: datetime) -> Counts:
        bind = session.get_bind()
        parallel = isinstance(bind, Engine) and bind.dialect.name == "postgresql"
        workers = settings.jobs_billing_workers if parallel else 1
        sessions = sessionmaker(bind, expire_on_commit=False)
        lines = run_month(sessions, f"{today:%Y-%m}", now=now, tz=tz, workers=workers,
                          max_back_months=max_back_months)  # fmt: skip
        return {"lines": lines}

    def property_run(session: Session, pid: int, today: date, now: datetime) -> Counts:
        period = f"{today:%Y-%m}"
        before = session.scalar(
            select(BillingRun.lines_created).where(
                BillingRun.property_id == pid, BillingRun.period == period
            )
        )
        with BOARD.track(billing_key(pid, period)) as progress:
            run = run_billing(session, pid, period, now=now, tz=tz,
                              max_back_months=max_back_months, progress=progress)  # fmt: skip
        return {"lines": run.lines_created - (before or 0), "skipped": len(run.skipped)}

    def property_fees(session: Session, pid: int, today: date, now: datetime) -> Counts:
        return {"fees": fees.charge_late_fees(session, pid, today=today, now=now)}

    def late_fees(session: Session, today: date, now: datetime) -> Counts:
        return _summed(property_fees, session, today, now)

    def reminders(session: Session, today: date, now: datetime) -> Counts:
        smtp = settings.smtp()
        queued = sum(
            fees.queue_reminders(session, pid, today=today, now=now, email=smtp is not None)
            for pid in property_ids(session)
        )
        session.flush()
        sent = notify.send_pending(session, now=now, smtp=smtp, keys=keys)
        return {"queued": queued, "sent": sent}

    def property_prepaid(session: Session, pid: int, today: date, now: datetime) -> Counts:
        charged = prepaid_accounts.charge_readings(session, pid, now=now, tz=tz)
        session.commit()
        if charged.entries or charged.cutoff_leases:
            log.info(
                "prepaid %s property %s: %d readings charged; cut-off candidates %s",
                today,
                pid,
                charged.entries,
                charged.cutoff_leases,
            )
        return {"readings": charged.entries, "cutoff_candidates": len(charged.cutoff_leases)}

    def prepaid(session: Session, today: date, now: datetime) -> Counts:
        """Deduct every prepaid account's new readings; each reading is charged once, so the
        job is idempotent per day and catches up on days it missed."""
        return _summed(property_prepaid, session, today, now)

    return [
        Job("billing-run", settings.jobs_billing_at, monthly_run, settings.jobs_billing_day,
            per_property=property_run),
        Job("late-fees", settings.jobs_late_fees_at, late_fees, per_property=property_fees),
        # Sending is not per property: what is queued goes out together (one SMTP connection).
        Job("overdue-reminders", settings.jobs_reminders_at, reminders),
        Job("prepaid-deduction", settings.jobs_prepaid_at, prepaid,
            per_property=property_prepaid),
    ]  # fmt: skip


def _summed(
    each: Callable[[Session, int, date, datetime], Counts],
    session: Session,
    today: date,
    now: datetime,
) -> Counts:
    """A per-property job over every property, its counts added up."""
    total: Counts = {}
    for pid in property_ids(session):
        for name, n in each(session, pid, today, now).items():
            total[name] = total.get(name, 0) + n
    return total
