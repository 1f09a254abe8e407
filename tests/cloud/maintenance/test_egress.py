"""Server-side request forgery through alarm webhooks, performed against real HTTP servers on
loopback: names that resolve to loopback, other spellings of a private address, a name with a
private address among its answers, redirects to private addresses and endless redirects."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy.orm import Session

from cloud.config import Settings
from cloud.maintenance import alarms
from cloud.maintenance.notify import channels, deliveries
from cloud.maintenance.notify.egress import MAX_REDIRECTS, EgressPolicy, guarded_client
from tests.cloud.conftest import NOW
from tests.cloud.maintenance.test_notify import KEYS, rows, send_json, subscribe, subscriber

PAYLOAD = {"msgtype": "markdown", "markdown": {"content": "alarm"}}


@dataclass
class Server:
    """Answers robot-style JSON, or a 307 to `redirect` when set; keeps every path it is sent."""

    base: str = ""
    redirect: str = ""
    hits: list[str] = field(default_factory=list)


@contextmanager
def server_on(host: str) -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            state.hits.append(self.path)
            if state.redirect:
                self.send_response(307)
                self.send_header("Location", state.redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            send_json(self, {"errcode": 0, "errmsg": "ok"})

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://{host}:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def robot() -> Iterator[Server]:
    with server_on("127.0.0.1") as s:
        yield s


@pytest.fixture
def metadata() -> Iterator[Server]:
    """What an attacker aims at: a service on another private address."""
    with server_on("127.0.0.2") as s:
        yield s


# http allowed (the servers speak plain http), private addresses not: the production rule.
HTTP_ONLY = EgressPolicy(http=True)
# ... and the robot's own address allowed, as an operator may allow a relay's network.
ROBOT_ALLOWED = EgressPolicy(http=True, networks=(ipaddress.ip_network("127.0.0.1/32"),))


def post(policy: EgressPolicy, url: str, resolve: Any = None) -> None:
    with guarded_client(policy, resolve) if resolve else guarded_client(policy) as client:
        channels.post_webhook(client, url, PAYLOAD, policy)


@pytest.mark.timeout(30)
def test_a_name_that_resolves_to_loopback_is_refused_after_resolution(
    session: Session, robot: Server
) -> None:
    org_id, _, uid = subscriber(session)
    port = robot.base.rsplit(":", 1)[1]
    subscribe(session, uid, "wecom", f"http://localhost:{port}/wecom")  # a name passes the form
    alarms.raise_alarm(session, org_id, "usage_spike", "M-1", "usage 9x", now=NOW)
    with guarded_client(HTTP_ONLY) as client:
        sender = deliveries.Sender(None, client, keys=KEYS, policy=HTTP_ONLY)
        assert deliveries.send_due(session, sender, NOW) == (0, 1)
    (row,) = rows(session)
    assert "is not a public address" in row.last_error
    assert robot.hits == []


@pytest.mark.timeout(30)
def test_a_decimal_spelling_of_loopback_is_refused(robot: Server) -> None:
    port = robot.base.rsplit(":", 1)[1]
    with pytest.raises(channels.SendError, match=r"127\.0\.0\.1 is not a public address"):
        post(HTTP_ONLY, f"http://2130706433:{port}/wecom")  # int(127.0.0.1)
    assert robot.hits == []


@pytest.mark.timeout(30)
def test_a_name_with_a_private_address_among_its_answers_is_refused(robot: Server) -> None:
    """A hostile DNS server answers an allowed address and a private one; the connection would
    go to either, so the name is refused."""
    port = int(robot.base.rsplit(":", 1)[1])

    def hostile(host: str, _port: int) -> list[str]:
        return ["127.0.0.1", "10.0.0.7"] if host == "robot.evil.test" else []

    with pytest.raises(channels.SendError, match=r"10\.0\.0\.7 is not a public address"):
        post(ROBOT_ALLOWED, f"http://robot.evil.test:{port}/wecom", hostile)
    assert robot.hits == []

    # answered alone, the allowed address is reached, and by the address that was checked
    def friendly(_host: str, _port: int) -> list[str]:
        return ["127.0.0.1"]

    post(ROBOT_ALLOWED, f"http://robot.evil.test:{port}/wecom", friendly)
    assert robot.hits == ["/wecom"]


@pytest.mark.timeout(30)
def test_a_redirect_to_a_private_address_is_not_followed(robot: Server, metadata: Server) -> None:
    names = {"robot.test": "127.0.0.1", "metadata.evil.test": "127.0.0.2"}

    def dns(host: str, _port: int) -> list[str]:
        return [names[host]]

    robot_port, metadata_port = (s.base.rsplit(":", 1)[1] for s in (robot, metadata))
    robot.redirect = f"http://metadata.evil.test:{metadata_port}/latest/meta-data"  # by name
    with pytest.raises(channels.SendError, match=r"127\.0\.0\.2 is not a public address"):
        post(ROBOT_ALLOWED, f"http://robot.test:{robot_port}/wecom", dns)
    robot.redirect = f"{metadata.base}/latest/meta-data"  # by address
    with pytest.raises(channels.SendError, match=r"redirected: .*127\.0\.0\.2"):
        post(ROBOT_ALLOWED, f"{robot.base}/wecom")
    robot.redirect = "file:///etc/passwd"
    with pytest.raises(channels.SendError, match="redirected"):
        post(ROBOT_ALLOWED, f"{robot.base}/wecom")
    assert robot.hits == ["/wecom"] * 3
    assert metadata.hits == []


@pytest.mark.timeout(30)
def test_redirects_are_bounded(robot: Server) -> None:
    robot.redirect = "/again"
    with pytest.raises(channels.SendError, match=f"more than {MAX_REDIRECTS} redirects"):
        post(ROBOT_ALLOWED, f"{robot.base}/wecom")
    assert robot.hits == ["/wecom"] + ["/again"] * MAX_REDIRECTS
    # a bounded redirect to an allowed address is followed
    robot.hits.clear()
    with server_on("127.0.0.1") as moved:
        robot.redirect = f"{moved.base}/new"
        post(ROBOT_ALLOWED, f"{robot.base}/wecom")
        assert moved.hits == ["/new"]


def test_insecure_webhooks_are_refused_in_production() -> None:
    with pytest.raises(ValueError, match="ANJU_WEBHOOKS_INSECURE"):
        Settings(env="production", secret_key="x" * 40, webhooks_insecure=True)
    dev = Settings(env="development", webhooks_insecure=True, webhook_networks="10.9.0.0/16")
    assert dev.webhook_policy.http
    assert dev.webhook_policy.allows(ipaddress.ip_address("192.168.1.1"))
    strict = Settings(env="development", webhook_networks="10.9.0.0/16").webhook_policy
    assert strict.allows(ipaddress.ip_address("10.9.3.4"))
    assert not strict.allows(ipaddress.ip_address("10.8.3.4"))
    assert not strict.http
