"""The three channels an alarm reaches people on: e-mail, and the WeChat Work and DingTalk group
robots' webhooks. Targets are checked when a subscription is stored, since a webhook URL is sent
to by the server and must not point it at a file or another scheme."""

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
from cloud.models import Alarm

CHANNELS = ("email", "wecom", "dingtalk")
MAX_TARGET = 500
MAX_SECRET = 200
WEBHOOK_TIMEOUT_S = 10.0
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,63}$")


class TargetError(ValueError):
    """A channel, address, webhook URL or secret that cannot be stored."""


class SendError(RuntimeError):
    """One delivery failed; it is tried again later."""


def check_target(channel: str, target: str, secret: str = "") -> None:
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
    url = urllib.parse.urlsplit(target)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise TargetError("a webhook must be an http(s) URL with a host")


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


def post_webhook(client: httpx.Client, url: str, payload: dict[str, Any]) -> None:
    """A robot answers 200 with `errcode` 0 when it took the message."""
    try:
        r = client.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise SendError(f"{type(exc).__name__}: {exc}") from None
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
