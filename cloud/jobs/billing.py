"""The billing jobs: the monthly run, daily late fees, overdue reminders (and sending them),
prepaid deduction."""

from __future__ import annotations

import logging
from datetime import date, datetime, time
from time import monotonic

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.billing.service import fees, notify, prepaid_accounts
from cloud.billing.service.runs import run_billing
from cloud.jobs.scheduler import Job
from cloud.models import Property
from cloud.security.crypto import FieldKeys

log = logging.getLogger(__name__)


class JobSettings(BaseSettings):
    """`ANJU_JOBS_*` and `ANJU_SMTP_*`: when the jobs run, and where email goes."""

    model_config = SettingsConfigDict(env_prefix="ANJU_", extra="ignore", frozen=True)

    jobs_in_process: bool = False  # run the scheduler inside `anju cloud serve`
    jobs_billing_day: int = 1
    jobs_billing_at: time = time(2, 0)
    jobs_late_fees_at: time = time(1, 0)
    jobs_reminders_at: time = time(9, 0)
    jobs_prepaid_at: time = time(3, 0)
    jobs_timezone: str = "Asia/Shanghai"
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


def billing_jobs(settings: JobSettings, keys: FieldKeys | None = None) -> list[Job]:
    """`keys` decrypt tenants' email addresses for the reminders (none: in-app only)."""

    def monthly_run(session: Session, today: date, now: datetime) -> None:
        """Property by property, each committed: a crash resumes where it stopped (the runs
        are idempotent), and the log shows how far a long run has got."""
        ids = property_ids(session)
        started, lines = monotonic(), 0
        for n, pid in enumerate(ids, 1):
            lines += run_billing(session, pid, f"{today:%Y-%m}", now=now).lines_created
            session.commit()
            log.info(
                "billing-run %s: %d/%d properties, %d lines for the period, %.1f s",
                f"{today:%Y-%m}",
                n,
                len(ids),
                lines,
                monotonic() - started,
            )

    def late_fees(session: Session, today: date, now: datetime) -> None:
        for pid in property_ids(session):
            fees.charge_late_fees(session, pid, today=today, now=now)

    def reminders(session: Session, today: date, now: datetime) -> None:
        smtp = settings.smtp()
        for pid in property_ids(session):
            fees.queue_reminders(session, pid, today=today, now=now, email=smtp is not None)
        session.flush()
        notify.send_pending(session, now=now, smtp=smtp, keys=keys)

    def prepaid(session: Session, today: date, now: datetime) -> None:
        """Deduct every prepaid account's new readings; each reading is charged once, so the
        job is idempotent per day and catches up on days it missed."""
        for pid in property_ids(session):
            charged = prepaid_accounts.charge_readings(session, pid, now=now)
            session.commit()
            if charged.entries or charged.cutoff_leases:
                log.info(
                    "prepaid %s property %s: %d readings charged; cut-off candidates %s",
                    today,
                    pid,
                    charged.entries,
                    charged.cutoff_leases,
                )

    return [
        Job("billing-run", settings.jobs_billing_at, monthly_run, settings.jobs_billing_day),
        Job("late-fees", settings.jobs_late_fees_at, late_fees),
        Job("overdue-reminders", settings.jobs_reminders_at, reminders),
        Job("prepaid-deduction", settings.jobs_prepaid_at, prepaid),
    ]
