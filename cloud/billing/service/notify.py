"""The notification outbox: rows written with the event, sent later by a job.

In-app notifications are delivered by being in the table (the portal lists them); email goes out
only when SMTP is configured, otherwise the row stays in-app only.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.ingest.store import insert_ignoring_duplicates
from cloud.models import Notification

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Smtp:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None


def queue(
    session: Session,
    *,
    dedupe_key: str,
    kind: str,
    subject: str,
    body: str,
    now: datetime,
    tenant_id: int | None,
    lease_id: int | None,
    email: bool,
) -> None:
    """Queue one notification per channel; the same `dedupe_key` is queued only once."""
    channels = ["in_app", "email"] if email else ["in_app"]
    rows = [
        {
            "dedupe_key": f"{dedupe_key}:{channel}",
            "channel": channel,
            "tenant_id": tenant_id,
            "lease_id": lease_id,
            "kind": kind,
            "subject": subject,
            "body": body,
            "created_at": now,
            "error": "",
        }
        for channel in channels
    ]
    insert_ignoring_duplicates(session, Notification.__table__, rows)


def send_pending(
    session: Session, *, now: datetime, smtp: Smtp | None, addresses: dict[int, str]
) -> int:
    """Deliver what is queued: in-app rows are marked sent; email rows go through SMTP."""
    sent = 0
    pending = session.scalars(select(Notification).where(Notification.sent_at.is_(None))).all()
    for note in pending:
        if note.channel == "in_app":
            note.sent_at = now
            sent += 1
            continue
        address = addresses.get(note.tenant_id or 0)
        if smtp is None or address is None:
            note.error = "no SMTP server configured" if smtp is None else "no email address"
            continue
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = smtp.sender, address, note.subject
        message.set_content(note.body)
        try:
            with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
                if smtp.username:
                    client.login(smtp.username, smtp.password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            note.error = str(exc)[:500]
            log.warning("notification %s: email failed: %s", note.id, exc)
            continue
        note.sent_at = now
        sent += 1
    return sent
