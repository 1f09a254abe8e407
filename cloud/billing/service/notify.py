"""The notification outbox: rows written with the event, sent later by a job.

In-app notifications are delivered by being in the table (the portal lists them); email goes out
only when SMTP is configured, otherwise the row stays in-app only.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.bulk import insert_ignoring_duplicates
from cloud.models import Notification, Tenant
from cloud.security import pii
from cloud.security.crypto import FieldKeys

log = logging.getLogger(__name__)
SMTP_TIMEOUT_S = 10  # per SMTP command: a dead server must not hold the daily job for long


@dataclass(frozen=True, slots=True)
class Smtp:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False


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


def email_addresses(session: Session, keys: FieldKeys, tenant_ids: Iterable[int]) -> dict[int, str]:
    """Decrypted email addresses of these tenants (those that have one on file)."""
    ids = sorted(set(tenant_ids))
    if not ids:
        return {}
    rows = session.scalars(select(Tenant).where(Tenant.id.in_(ids), Tenant.email_enc.is_not(None)))
    return {t.id: address for t in rows if (address := pii.reveal(t, keys, "email")) is not None}


def send_pending(
    session: Session,
    *,
    now: datetime,
    smtp: Smtp | None,
    addresses: dict[int, str] | None = None,
    keys: FieldKeys | None = None,
) -> int:
    """Deliver what is queued: in-app rows are marked sent; email rows go through SMTP, over one
    connection. A row that could not be sent keeps its error and is tried again next time.
    Addresses: `addresses`, or else the tenants' own (decrypted with `keys`)."""
    pending = session.scalars(
        select(Notification).where(Notification.sent_at.is_(None)).order_by(Notification.id)
    ).all()
    sent = 0
    emails = []
    for note in pending:
        if note.channel == "in_app":
            note.sent_at = now
            sent += 1
        else:
            emails.append(note)
    if not emails:
        return sent
    if smtp is None:
        for note in emails:
            note.error = "no SMTP server configured"
        return sent
    if addresses is None:
        wanted = (n.tenant_id for n in emails if n.tenant_id is not None)
        addresses = email_addresses(session, keys, wanted) if keys is not None else {}
    return sent + _send_emails(smtp, emails, addresses, now)


def _send_emails(
    smtp: Smtp, notes: list[Notification], addresses: dict[int, str], now: datetime
) -> int:
    sent = 0
    client: smtplib.SMTP | None = None
    try:
        for note in notes:
            address = addresses.get(note.tenant_id or 0)
            if address is None:
                note.error = "no email address"
                continue
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = smtp.sender, address, note.subject
            message["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or None)
            message.set_content(note.body)
            try:
                if client is None:
                    client = _connect(smtp)
                client.send_message(message)
            except smtplib.SMTPRecipientsRefused as exc:
                note.error = f"refused: {exc.recipients}"[:500]
                continue
            except (OSError, smtplib.SMTPException) as exc:
                note.error = str(exc)[:500] or type(exc).__name__
                log.warning("notification %s: email failed: %s", note.id, exc)
                client = None  # a broken connection: the next message reconnects
                continue
            note.sent_at, note.error = now, ""
            sent += 1
    finally:
        if client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                client.quit()
    return sent


def _connect(smtp: Smtp) -> smtplib.SMTP:
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=SMTP_TIMEOUT_S)
    try:
        if smtp.starttls:
            client.starttls(context=ssl.create_default_context())
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
    except BaseException:
        client.close()
        raise
    return client
