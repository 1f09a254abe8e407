"""Delivery rows: one per (alarm, subscription, event), written with the alarm and sent by a
job. A failed send is tried again after a capped exponential backoff with jitter; after
`MAX_ATTEMPTS` the row is dead and waits for someone to retry it."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.billing.service.notify import Smtp
from cloud.db.bulk import insert_ignoring_duplicates
from cloud.maintenance.notify import channels
from cloud.maintenance.notify.egress import STRICT, EgressPolicy
from cloud.models import Alarm, AlarmDelivery, AlarmSubscription, User
from cloud.security.crypto import FieldKeys

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6
BASE_S = 30
CAP_S = 3600
BATCH = 200


def enqueue(session: Session, alarm: Alarm, event: str, now: datetime) -> int:
    """A pending delivery for every active user of the alarm's organisation subscribed to its
    kind (an empty kind list: every kind). Idempotent."""
    return enqueue_many(session, alarm.kind, [(alarm.id, alarm.org_id)], event, now)


def enqueue_many(
    session: Session, kind: str, alarms: Sequence[tuple[int, int]], event: str, now: datetime
) -> int:
    """`enqueue` for many alarms of one kind, as (alarm id, organisation id): what the alarm
    rules raise or clear in one evaluation. One query, however many alarms."""
    if not alarms:
        return 0
    subs = session.execute(
        select(AlarmSubscription.id, AlarmSubscription.kinds, User.org_id)
        .join(User, User.id == AlarmSubscription.user_id)
        .where(User.org_id.in_({org for _, org in alarms}), User.active.is_(True))
    ).all()
    by_org: dict[int, list[int]] = {}
    for sub_id, kinds, org in subs:
        if not kinds or kind in kinds:
            by_org.setdefault(org, []).append(sub_id)
    rows = [
        {"alarm_id": alarm_id, "subscription_id": sub_id, "event": event, "state": "pending",
         "attempts": 0, "next_at": now, "last_error": ""}
        for alarm_id, org in alarms for sub_id in by_org.get(org, [])
    ]  # fmt: skip
    insert_ignoring_duplicates(session, AlarmDelivery.__table__, rows)
    return len(rows)


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """Full jitter over a doubling window, capped."""
    window = min(CAP_S, BASE_S * 2 ** min(attempts - 1, 20))
    return timedelta(seconds=window / 2 + rng.uniform(0, window / 2))


@dataclass
class Sender:
    """`client` should be `egress.guarded_client(policy)`: the URL is checked here, the
    addresses it resolves to where the client connects."""

    smtp: Smtp | None
    client: httpx.Client
    rng: random.Random = field(default_factory=random.Random)
    keys: FieldKeys | None = None  # open DingTalk secrets
    policy: EgressPolicy = STRICT

    def send(self, sub: AlarmSubscription, alarm: Alarm, event: str, now: datetime) -> None:
        title, body = channels.text(alarm, event)
        if sub.channel == "email":
            channels.send_email(self.smtp, sub.target, title, body)
            return
        secret = channels.open_secret(self.keys, sub)
        channels.check_target(sub.channel, sub.target, secret, self.policy)
        url, payload = channels.webhook(sub.channel, sub.target, secret, title, body, now=now)
        channels.post_webhook(self.client, url, payload, self.policy)


def send_due(session: Session, sender: Sender, now: datetime) -> tuple[int, int]:
    """Send the deliveries that are due; (sent, failed). One bad row never stops the rest."""
    due = session.scalars(
        select(AlarmDelivery)
        .where(AlarmDelivery.state == "pending", AlarmDelivery.next_at <= now)
        .order_by(AlarmDelivery.next_at, AlarmDelivery.id)
        .limit(BATCH)
    ).all()
    sent = failed = 0
    for row in due:
        sub = session.get(AlarmSubscription, row.subscription_id)
        alarm = session.get(Alarm, row.alarm_id)
        if sub is None or alarm is None:
            fail(row, "the subscription or alarm is gone", now, sender.rng)
            failed += 1
            continue
        try:
            sender.send(sub, alarm, row.event, now)
        except Exception as exc:  # noqa: BLE001 - any failure is this row's, retried later
            fail(row, str(exc) or type(exc).__name__, now, sender.rng)
            failed += 1
            continue
        row.state, row.sent_at, row.last_error = "sent", now, ""
        sent += 1
    return sent, failed


def fail(row: AlarmDelivery, error: str, now: datetime, rng: random.Random) -> None:
    row.attempts += 1
    row.last_error = error[:500]
    if row.attempts >= MAX_ATTEMPTS:
        row.state = "dead"
        log.warning("alarm delivery %s dead after %s attempts: %s", row.id, row.attempts, error)
    else:
        row.next_at = now + backoff(row.attempts, rng)


def retry(row: AlarmDelivery, now: datetime) -> None:
    """A dead delivery goes back to pending with a fresh count."""
    if row.state != "dead":
        raise ValueError(f"a {row.state} delivery cannot be retried")
    row.state, row.attempts, row.next_at, row.last_error = "pending", 0, now, ""
