"""Maintenance jobs: the alarm rules every few minutes, and the SLA's overdue flag."""

from __future__ import annotations

import logging
import random
from datetime import date, datetime, time

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.orm import Session

from cloud.billing.service.notify import Smtp
from cloud.jobs.billing import JobSettings
from cloud.jobs.scheduler import Job
from cloud.maintenance import rules
from cloud.maintenance.notify import deliveries, egress
from cloud.maintenance.notify.egress import STRICT, EgressPolicy
from cloud.maintenance.sla import flag_overdue
from cloud.security.crypto import FieldKeys

log = logging.getLogger(__name__)
ALARMS_JOB = "alarms"
OVERDUE_JOB = "work-orders-overdue"
NOTIFY_JOB = "alarm-notifications"


class AlarmJobSettings(BaseSettings):
    """`ANJU_ALARMS_*`: how often the rules run and their thresholds."""

    model_config = SettingsConfigDict(env_prefix="ANJU_ALARMS_", extra="ignore", frozen=True)

    every_min: int = Field(default=2, ge=1, le=60)
    poll_s: int = Field(default=300, ge=10, le=86_400)
    silent_polls: int = Field(default=3, ge=1, le=1000)
    offline_min: int = Field(default=10, ge=1, le=10_080)
    backlog_rows: int = Field(default=5000, ge=1, le=rules.BACKLOG_RECORDS)
    refusals: int = Field(default=5, ge=1, le=1000)

    def rules(self) -> rules.RuleSettings:
        return rules.RuleSettings(
            poll_s=self.poll_s, silent_polls=self.silent_polls, offline_min=self.offline_min,
            backlog_rows=self.backlog_rows, refusals=self.refusals,
        )  # fmt: skip


def maintenance_jobs(
    settings: AlarmJobSettings | None = None,
    *,
    smtp: Smtp | None = None,
    rng: random.Random | None = None,
    keys: FieldKeys | None = None,
    policy: EgressPolicy = STRICT,
) -> list[Job]:
    """`smtp`: where alarm e-mail goes (default: the `ANJU_SMTP_*` settings); `keys` open the
    robots' secrets; `policy`: which webhook addresses may be reached."""
    s = settings or AlarmJobSettings()
    mail = smtp if smtp is not None else JobSettings().smtp()
    jitter = rng or random.SystemRandom()
    rule_settings = s.rules()

    def evaluate(session: Session, _today: date, now: datetime) -> None:
        out = rules.evaluate(session, now, rule_settings)
        changed = {k: v for k, v in out.items() if v.raised or v.cleared}
        if changed:
            log.info(
                "alarms: %s", ", ".join(f"{k} +{v.raised} -{v.cleared}" for k, v in changed.items())
            )

    def overdue(session: Session, _today: date, now: datetime) -> None:
        flag_overdue(session, now)

    def notify(session: Session, _today: date, now: datetime) -> None:
        with egress.guarded_client(policy) as client:
            sender = deliveries.Sender(mail, client, jitter, keys, policy)
            sent, failed = deliveries.send_due(session, sender, now)
        if sent or failed:
            log.info("alarm notifications: %s sent, %s failed", sent, failed)

    return [
        Job(ALARMS_JOB, time(0, 0), evaluate, every_min=s.every_min),
        Job(OVERDUE_JOB, time(0, 0), overdue, every_min=5),
        Job(NOTIFY_JOB, time(0, 0), notify, every_min=1),
    ]
