"""Overdue reminders by email, through a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.billing.service.runs import run_billing
from cloud.db import make_engine, make_sessionmaker
from cloud.jobs.billing import JobSettings, billing_jobs
from cloud.jobs.scheduler import run_due
from cloud.models import Invoice, Notification, Tenant
from cloud.security import pii
from cloud.security.crypto import FieldKeys
from tests.cloud.billing.test_jobs import NOW
from tests.cloud.billing.world import TZ, World

REFUSED = "nobody@refused.test"


@dataclass
class Inbox:
    """An SMTP handler that keeps what it receives and refuses one domain."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.endswith("@refused.test"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    inbox: Inbox
    port: int
    server: asyncio.Server


@pytest.fixture
async def smtp_server() -> AsyncIterator[SmtpServer]:
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, hostname="mail.anju.test"), "127.0.0.1", 0
    )
    try:
        yield SmtpServer(inbox, server.sockets[0].getsockname()[1], server)
    finally:
        server.close()
        await server.wait_closed()


def overdue_tenants(session: Session, keys: FieldKeys) -> dict[str, int]:
    """Three overdue leases: a tenant with an address, one without, one the server refuses."""
    w = World(session, "Mail Org")
    tenants = {}
    for code, address in (("M-1", "Li.Lei@Example.com"), ("M-2", None), ("M-3", REFUSED)):
        lease = w.lease(w.unit(code, "30"), date(2026, 1, 1), date(2026, 12, 31), rent=150000)
        tenant = session.get_one(Tenant, lease.primary_tenant_id)
        pii.set_pii(tenant, keys, "email", address)
        tenants[code] = tenant.id
    run_billing(session, w.prop.id, "2026-01", now=NOW, tz=TZ)
    session.commit()
    return tenants


async def test_the_reminder_job_sends_email_through_smtp(
    database_url: str, keys: FieldKeys, smtp_server: SmtpServer
) -> None:
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    settings = JobSettings(
        smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_sender="billing@anju.test"
    )
    job = next(j for j in billing_jobs(settings, keys, tz=TZ) if j.name == "overdue-reminders")
    try:
        with sessions() as session:
            tenants = overdue_tenants(session, keys)
            overdue = len(
                session.scalars(
                    select(Invoice.id).where(Invoice.due_date < NOW.date(), Invoice.paid_fen == 0)
                ).all()
            )
            assert overdue >= 3
        ran = await asyncio.to_thread(run_due, sessions, [job], now=NOW, holder="a", tz=TZ)
        assert ran == ["overdue-reminders"]
        received = smtp_server.inbox.messages
        per_tenant = overdue // 3
        assert [to for to, _ in received] == [["li.lei@example.com"]] * per_tenant
        _, first = received[0]
        assert first["From"] == "billing@anju.test"
        with sessions() as session:
            numbers = session.scalars(
                select(Invoice.number)
                .join(Notification, Notification.lease_id == Invoice.lease_id)
                .where(Notification.tenant_id == tenants["M-1"])
            ).all()
        assert first["Subject"].startswith("账单逾期提醒 / Overdue bill ")
        assert first["Subject"].removeprefix("账单逾期提醒 / Overdue bill ") in numbers
        assert "已逾期" in first.get_content()
        assert "day(s) overdue; ¥" in first.get_content()
        with sessions() as session:
            email = {
                (n.tenant_id, n.sent_at is not None, n.error)
                for n in session.scalars(
                    select(Notification).where(Notification.channel == "email")
                )
            }
            in_app = session.scalars(
                select(Notification).where(Notification.channel == "in_app")
            ).all()
        assert all(n.sent_at is not None for n in in_app)
        assert email == {
            (tenants["M-1"], True, ""),
            (tenants["M-2"], False, "no email address"),
            (tenants["M-3"], False, f"refused: {{'{REFUSED}': (550, b'5.1.1 no such mailbox')}}"),
        }
        # the next day with the server gone: the failure is recorded, nothing is marked sent
        smtp_server.server.close()
        await smtp_server.server.wait_closed()
        next_day = NOW + timedelta(days=1)
        ran = await asyncio.to_thread(run_due, sessions, [job], now=next_day, holder="a", tz=TZ)
        assert ran == ["overdue-reminders"]
        assert len(received) == per_tenant
        with sessions() as session:
            unsent = session.scalars(
                select(Notification).where(
                    Notification.channel == "email",
                    Notification.tenant_id == tenants["M-1"],
                    Notification.sent_at.is_(None),
                )
            ).all()
        assert len(unsent) == per_tenant
        assert all("Connection refused" in n.error for n in unsent)
    finally:
        engine.dispose()


def test_email_addresses_are_pii() -> None:
    assert pii.normalize("email", " Li.Lei@Example.COM ") == "li.lei@example.com"
    assert pii.mask("email", "li.lei@example.com") == "l***@example.com"
    for bad in ("li.lei", "a@b", "a b@example.com", "a@@example.com"):
        with pytest.raises(pii.InvalidPiiError):
            pii.normalize("email", bad)
