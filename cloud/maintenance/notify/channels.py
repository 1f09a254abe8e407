"""The three channels an alarm reaches people on: e-mail, and the WeChat Work and DingTalk group
robots' webhooks. Targets are checked when a subscription is stored and again when sent to,
since a webhook URL is sent to by the server and must not point it at a file, another scheme or
its own network (`egress`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import urllib.parse
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import httpx

from cloud.billing.service.notify import Smtp, _connect
from cloud.maintenance.notify.egress import MAX_REDIRECTS, STRICT, EgressPolicy, literal_ip
from cloud.models import Alarm, AlarmSubscription
from cloud.security import contexts
from cloud.security.crypto import FieldKeys, decrypt, encrypt

CHANNELS = ("email", "wecom", "dingtalk")
MAX_TARGET = 500
MAX_SECRET = 200
WEBHOOK_TIMEOUT_S = 10.0
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,63}$")


class TargetError(ValueError):
    """A channel, address, webhook URL or secret that cannot be stored."""


class SendError(RuntimeError):
    """One delivery failed; it is tried again later."""


def check_target(
    channel: str, target: str, secret: str = "", policy: EgressPolicy = STRICT
) -> None:
    if channel not in CHANNELS:
        raise TargetError(f"channel must be one of {', '.join(CHANNELS)}")
    if len(secret) > MAX_SECRET or not secret.isprintable():
        raise TargetError("the secret must be at most 200 printable characters")
    if not target or len(target) > MAX_TARGET or not target.isprintable() or " " in target:
        raise TargetError("the target must be 1..500 printable characters without spaces")
    if channel == "email":
        if not EMAIL_RE.match(target):
            raise TargetError("not an e-mail address")
        return
    check_url(target, policy)


def check_url(target: str, policy: EgressPolicy) -> None:
    """https with a host (http too if the policy says so), not a refused address literal,
    no credentials in the URL."""
    try:
        url = urllib.parse.urlsplit(target)
        url.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise TargetError("not a URL") from None
    schemes = ("http", "https") if policy.http else ("https",)
    if url.scheme not in schemes or not url.hostname:
        raise TargetError(f"a webhook must be a {' or '.join(schemes)} URL with a host")
    if url.username is not None or url.password is not None:
        raise TargetError("a webhook URL carries no user name or password")
    ip = literal_ip(url.hostname)
    if ip is not None and not policy.allows(ip):
        raise TargetError(f"a webhook may not point at {ip}: not a public address")


def seal_secret(keys: FieldKeys, user_id: int, secret: str) -> bytes | None:
    return (
        encrypt(keys, secret.encode(), context=contexts.alarm_secret(user_id)) if secret else None
    )


def open_secret(keys: FieldKeys | None, sub: AlarmSubscription) -> str:
    if sub.secret_enc is None:
        return ""
    if keys is None:
        raise SendError("no field keys to open the robot's secret")
    return decrypt(keys, sub.secret_enc, context=contexts.alarm_secret(sub.user_id)).decode()


def text(alarm: Alarm, event: str) -> tuple[str, str]:
    """Title and markdown body of the notice."""
    verb = "raised" if event == "raised" else "cleared"
    title = f"[{alarm.severity}] {alarm.kind} {verb}"
    body = (
        f"### {title}\n\n{alarm.subject}\n\n"
        f"- key: {alarm.key}\n- raised at: {alarm.raised_at:%Y-%m-%d %H:%M} UTC\n"
        f"- alarm #{alarm.id}"
    )
    return title, body


def send_email(smtp: Smtp | None, address: str, title: str, body: str) -> None:
    if smtp is None:
        raise SendError("no SMTP server configured")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = smtp.sender, address, title
    message["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or None)
    message.set_content(body)
    client = _connect(smtp)
    try:
        client.send_message(message)
    finally:
        client.close()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's robot signature: base64(HMAC-SHA256(secret, "timestamp\\nsecret"))."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def webhook(
    channel: str, target: str, secret: str, title: str, body: str, *, now: datetime
) -> tuple[str, dict[str, Any]]:
    """The URL and JSON a robot expects."""
    if channel == "wecom":
        return target, {"msgtype": "markdown", "markdown": {"content": body}}
    url = target
    if secret:
        ts = int(now.timestamp() * 1000)
        query = urllib.parse.urlencode({"timestamp": ts, "sign": dingtalk_sign(secret, ts)})
        url = f"{target}{'&' if '?' in target else '?'}{query}"
    return url, {"msgtype": "markdown", "markdown": {"title": title, "text": body}}


def post_webhook(
    client: httpx.Client, url: str, payload: dict[str, Any], policy: EgressPolicy = STRICT
) -> None:
    """A robot answers 200 with `errcode` 0 when it took the message. A redirect is followed
    (the JSON posted again) at most `MAX_REDIRECTS` times, each target checked like the first;
    the client's connections are checked by `egress`."""
    for _hop in range(MAX_REDIRECTS + 1):
        try:
            r = client.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from None
        if not r.is_redirect:
            break
        url = urllib.parse.urljoin(url, r.headers["location"])
        try:
            check_url(url, policy)
        except TargetError as exc:
            raise SendError(f"redirected: {exc}") from None
    else:
        raise SendError(f"more than {MAX_REDIRECTS} redirects")
    if r.status_code != 200:
        raise SendError(f"HTTP {r.status_code}")
    try:
        answer = r.json()
    except ValueError:
        raise SendError("the answer is not JSON") from None
    code = answer.get("errcode") if isinstance(answer, dict) else None
    if code != 0:
        msg = str(answer.get("errmsg", ""))[:200] if isinstance(answer, dict) else ""
        raise SendError(f"errcode {code}: {msg}")
