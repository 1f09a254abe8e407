"""Alarm notifications through a real SMTP server and real HTTP robots on loopback: e-mail,
WeChat Work and DingTalk (its signature checked by the robot), backoff, dead letters."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import random
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.billing.service.notify import Smtp
from cloud.db import as_utc
from cloud.maintenance import alarms
from cloud.maintenance.notify import channels, deliveries
from cloud.maintenance.notify.egress import EgressPolicy
from cloud.models import AlarmDelivery, AlarmSubscription, Organisation, Role, User
from cloud.security.crypto import DecryptionError, FieldKeys, generate_key
from tests.cloud.billing.test_email import SmtpServer, smtp_server  # noqa: F401 - fixture
from tests.cloud.conftest import NOW, add_portfolio
from tests.cloud.world import add_user

SECRET = "SEC-robot-secret"


@dataclass
class Robot:
    """A group robot: keeps what it is sent, answers `errcodes` in turn (then 0), and refuses a
    DingTalk message whose signature does not match its secret."""

    errcodes: list[int] = field(default_factory=list)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = urllib.parse.urlsplit(path)
        if url.path == "/dingtalk":
            q = urllib.parse.parse_qs(url.query)
            ts = q["timestamp"][0]
            digest = hmac.digest(SECRET.encode(), (ts + "\n" + SECRET).encode(), "sha256")
            if q["sign"][0] != base64.b64encode(digest).decode():
                return {"errcode": 310000, "errmsg": "sign not match"}
        self.received.append((url.path, body))
        return {"errcode": self.errcodes.pop(0) if self.errcodes else 0, "errmsg": "ok"}


def send_json(handler: BaseHTTPRequestHandler, answer: dict[str, Any]) -> None:
    out = json.dumps(answer).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(out)))
    handler.end_headers()
    handler.wfile.write(out)


@pytest.fixture
def robot() -> Iterator[tuple[Robot, str]]:
    state = Robot()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            send_json(self, state.answer(self.path, json.loads(raw)))

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def subscriber(session: Session, name: str = "Notify Org") -> tuple[int, int, int]:
    prop, _, _ = add_portfolio(session, name)
    org = session.get_one(Organisation, prop.org_id)
    user = add_user(session, org, f"{name}-mgr", Role.MANAGER, [prop.id])
    return org.id, prop.id, user.id


# The robots listen on loopback over http: allowed here only.
LOOPBACK = EgressPolicy(http=True, any_address=True)
KEYS = FieldKeys(current="k1", keys={"k1": generate_key()}, index_key=generate_key())


def subscribe(
    session: Session, user_id: int, channel: str, target: str, secret: str = "", **kw: Any
) -> AlarmSubscription:
    channels.check_target(channel, target, secret, LOOPBACK)
    sealed = channels.seal_secret(KEYS, user_id, secret)
    sub = AlarmSubscription(user_id=user_id, channel=channel, target=target, secret_enc=sealed,
                            **kw)  # fmt: skip
    session.add(sub)
    session.flush()
    return sub


def sender(smtp: Smtp | None, client: httpx.Client) -> deliveries.Sender:
    return deliveries.Sender(smtp, client, random.Random(7), KEYS, LOOPBACK)


def rows(session: Session) -> list[AlarmDelivery]:
    return list(session.scalars(select(AlarmDelivery).order_by(AlarmDelivery.id)))


def test_robots_get_markdown_dingtalk_signed(session: Session, robot: tuple[Robot, str]) -> None:
    state, base = robot
    org_id, prop_id, uid = subscriber(session)
    subscribe(session, uid, "wecom", f"{base}/wecom?key=abc")
    subscribe(session, uid, "dingtalk", f"{base}/dingtalk?access_token=t", secret=SECRET)
    subscribe(session, uid, "wecom", f"{base}/doors-only", kinds=["door_forced"])
    alarms.raise_alarm(session, org_id, "meter_silent", "M-1", "meter M-1 silent", now=NOW,
                       property_id=prop_id)  # fmt: skip
    assert len(rows(session)) == 2  # the doors-only subscription is not for this kind
    with httpx.Client() as client:
        assert deliveries.send_due(session, sender(None, client), NOW) == (2, 0)
    paths = dict(state.received)
    assert paths["/wecom"]["msgtype"] == "markdown"
    assert "meter M-1 silent" in paths["/wecom"]["markdown"]["content"]
    assert paths["/dingtalk"]["markdown"]["title"] == "[warning] meter_silent raised"
    assert [(r.state, r.sent_at is not None) for r in rows(session)] == [("sent", True)] * 2
    alarms.clear_alarm(session, org_id, "meter_silent", "M-1", now=NOW + timedelta(minutes=5))
    with httpx.Client() as client:
        deliveries.send_due(session, sender(None, client), NOW + timedelta(minutes=5))
    assert "cleared" in state.received[-1][1]["markdown"]["content" if state.received[-1][
        0] == "/wecom" else "text"]  # fmt: skip


def test_the_robot_secret_is_sealed_to_its_owner(session: Session) -> None:
    _, _, uid = subscriber(session)
    _, _, other = subscriber(session, "Other Org")
    sub = subscribe(session, uid, "dingtalk", "https://oapi.dingtalk.com/robot/send", SECRET)
    session.commit()
    stored = session.scalars(select(AlarmSubscription.secret_enc)).one()
    assert stored is not None
    assert SECRET.encode() not in stored
    assert channels.open_secret(KEYS, sub) == SECRET
    # copied onto another user's row, it does not open: that delivery fails, nothing is sent
    stolen = subscribe(session, other, "dingtalk", "https://oapi.dingtalk.com/robot/send")
    stolen.secret_enc = stored
    with pytest.raises(DecryptionError):
        channels.open_secret(KEYS, stolen)


def test_wrong_dingtalk_secret_is_a_failure(session: Session, robot: tuple[Robot, str]) -> None:
    state, base = robot
    org_id, _, uid = subscriber(session)
    subscribe(session, uid, "dingtalk", f"{base}/dingtalk", secret="not the robot's")
    alarms.raise_alarm(session, org_id, "usage_spike", "M-2", "usage 9x", now=NOW)
    with httpx.Client() as client:
        assert deliveries.send_due(session, sender(None, client), NOW) == (0, 1)
    (row,) = rows(session)
    assert (row.state, row.attempts) == ("pending", 1)
    assert "310000" in row.last_error
    assert state.received == []


def test_backoff_then_success_then_dead_letter(session: Session, robot: tuple[Robot, str]) -> None:
    state, base = robot
    state.errcodes = [45009, 45009]  # rate-limited twice
    org_id, _, uid = subscriber(session)
    subscribe(session, uid, "wecom", f"{base}/wecom")
    alarms.raise_alarm(session, org_id, "usage_spike", "M-3", "usage 9x", now=NOW)
    now = NOW
    with httpx.Client() as client:
        s = sender(None, client)
        assert deliveries.send_due(session, s, now) == (0, 1)
        (row,) = rows(session)
        first_wait = as_utc(row.next_at) - now
        assert timedelta(seconds=15) <= first_wait <= timedelta(seconds=30)
        assert deliveries.send_due(session, s, now + first_wait - timedelta(seconds=1)) == (0, 0)
        now = as_utc(row.next_at)
        assert deliveries.send_due(session, s, now) == (0, 1)
        assert timedelta(seconds=30) <= as_utc(row.next_at) - now <= timedelta(seconds=60)
        now = as_utc(row.next_at)
        assert deliveries.send_due(session, s, now) == (1, 0)
        assert (row.state, row.attempts) == ("sent", 2)

        # A robot that is gone: capped backoff, then the dead-letter list.
        subscribe(session, uid, "wecom", "http://127.0.0.1:9/closed")
        alarms.raise_alarm(session, org_id, "door_forced", "D-1", "door forced", now=now)
        dead = rows(session)[-1]
        for _ in range(deliveries.MAX_ATTEMPTS):
            deliveries.send_due(session, s, now)
            assert as_utc(dead.next_at) - now <= timedelta(seconds=deliveries.CAP_S)
            now = as_utc(dead.next_at)
    assert (dead.state, dead.attempts) == ("dead", deliveries.MAX_ATTEMPTS)
    deliveries.retry(dead, now)
    assert (dead.state, dead.attempts) == ("pending", 0)
    with pytest.raises(ValueError, match="sent delivery"):
        deliveries.retry(row, now)


async def test_email_through_smtp(
    session: Session,
    smtp_server: SmtpServer,  # noqa: F811 - the imported fixture
) -> None:
    org_id, _, uid = subscriber(session)
    subscribe(session, uid, "email", "ops@anju.test")
    alarms.raise_alarm(session, org_id, "gateway_offline", "gw-1", "gateway gw-1 offline",
                       now=NOW)  # fmt: skip
    smtp = Smtp("127.0.0.1", smtp_server.port, "alarms@anju.test")
    with httpx.Client() as client:
        done = await asyncio.to_thread(deliveries.send_due, session, sender(smtp, client), NOW)
    assert done == (1, 0)
    ((to, message),) = smtp_server.inbox.messages
    assert to == ["ops@anju.test"]
    assert message["Subject"] == "[critical] gateway_offline raised"
    assert "gateway gw-1 offline" in message.get_content()


def test_other_orgs_subscribers_hear_nothing(session: Session) -> None:
    org_id, _, _ = subscriber(session, "Org A")
    _, _, other = subscriber(session, "Org B")
    subscribe(session, other, "email", "b@anju.test")
    alarms.raise_alarm(session, org_id, "usage_spike", "M-9", "usage 9x", now=NOW)
    assert rows(session) == []


@pytest.mark.parametrize(
    ("channel", "target"),
    [
        ("wecom", "file:///etc/passwd"),
        ("wecom", "gopher://127.0.0.1:25/x"),
        ("dingtalk", "http://robot.test/send\x00?x=1"),
        ("wecom", "http:///no-host"),
        ("email", "ops@anju.test\x00"),
        ("email", "not-an-address"),
        ("sms", "13800000000"),
        ("wecom", "https://" + "a" * 600 + ".test"),
    ],
)
def test_hostile_targets_refused(channel: str, target: str) -> None:
    with pytest.raises(channels.TargetError):
        channels.check_target(channel, target)


@pytest.mark.parametrize(
    "target",
    [
        "http://robot.example/send",  # https only
        "https://127.0.0.1/send",
        "https://10.1.2.3/send",
        "https://169.254.169.254/latest/meta-data",  # a cloud's metadata service
        "https://[::1]/send",
        "https://[::ffff:127.0.0.1]/send",  # IPv4-mapped loopback
        "https://[fe80::1]/send",
        "https://user:pw@robot.example/send",
        "https://robot.example:99999/send",
    ],
)
def test_webhooks_are_public_https_by_default(target: str) -> None:
    with pytest.raises(channels.TargetError):
        channels.check_target("wecom", target)


def test_nul_in_secret_refused() -> None:
    with pytest.raises(channels.TargetError):
        channels.check_target("dingtalk", "https://oapi.dingtalk.com/robot/send", "a\x00b")


def test_user_of_other_org_cannot_be_subscribed_by_lookup(session: Session) -> None:
    """Subscriptions hang on the user; enqueue joins through the user's organisation."""
    org_a, _, ua = subscriber(session, "Org C")
    subscribe(session, ua, "email", "c@anju.test")
    assert session.get_one(User, ua).org_id == org_a
