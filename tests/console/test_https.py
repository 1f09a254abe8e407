"""The console in production: nginx from the cloud role's rendered site in front, a test CA
that chromium trusts through its own certificate store, HTTP redirected, HSTS, and a session
cookie that is Secure, HttpOnly and SameSite=Strict."""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import select

from cloud.api.deps import SESSION_COOKIE
from cloud.models import AuditEvent
from cloud.seed import DEMO_PASSWORD
from tests.conftest import free_port
from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS, Console, behind_tls_proxy
from tests.pki import Pki, make_pki
from tests.test_ansible import role_tasks

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CERTUTIL = shutil.which("certutil")
START_TIMEOUT_S = 10.0

pytestmark = pytest.mark.timeout(180)


@dataclass(frozen=True)
class Proxied:
    console: Console
    pki: Pki
    https: str
    http: str


def render_site(folder: Path, pki: Pki, https_port: int, http_port: int, upstream: int) -> Path:
    """The role's own nginx task, run locally into a folder laid out like /etc/nginx."""
    (folder / "sites-available").mkdir(parents=True)
    extra = {
        "anju_nginx_dir": str(folder),
        "anju_tls_certificate": str(pki.cert_file),
        "anju_tls_certificate_key": str(pki.key_file),
        "anju_nginx_https_port": https_port,
        "anju_nginx_http_port": http_port,
        "anju_http_port": upstream,
    }
    result = role_tasks(folder, "cloud-1", "anju_cloud", "nginx", extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder / "sites-available" / "anju.conf"


def nginx_main_conf(folder: Path, site: Path) -> Path:
    """What Debian's /etc/nginx/nginx.conf gives the site, with every path in the folder."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    temps = "".join(
        f"    {kind}_temp_path {folder / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = folder / "nginx.conf"
    conf.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n    access_log off;\n{temps}    include {site};\n}}\n"
    )
    return conf


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert process.poll() is None, "nginx exited at start"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            assert time.monotonic() < deadline, "nginx did not listen"
            time.sleep(0.05)
        else:
            return


@pytest.fixture(scope="module")
def proxied(console: Console, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    assert Path(NGINX).exists(), "make install puts nginx here"
    assert CERTUTIL, "make install puts certutil (libnss3-tools) here"
    folder = tmp_path_factory.mktemp("nginx")
    pki = make_pki(folder)
    pki.key_file.chmod(0o600)
    with behind_tls_proxy(console):
        upstream = int(console.url.rsplit(":", 1)[1])
        https_port, http_port = free_port(), free_port()
        site = render_site(folder / "etc", pki, https_port, http_port, upstream)
        conf = nginx_main_conf(folder, site)
        check = subprocess.run(
            [NGINX, "-t", "-c", str(conf), "-e", str(folder / "error.log")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr
        process = subprocess.Popen([NGINX, "-c", str(conf), "-e", str(folder / "error.log")])
        try:
            wait_for_port(https_port, process)
            yield Proxied(
                console, pki, f"https://localhost:{https_port}", f"http://127.0.0.1:{http_port}"
            )
        finally:
            process.terminate()
            process.wait(START_TIMEOUT_S)


def test_plain_http_only_redirects_to_https(proxied: Proxied) -> None:
    https_port = proxied.https.rsplit(":", 1)[1]
    with httpx.Client(timeout=5) as client:
        answer = client.post(
            f"{proxied.http}/api/v1/auth/login",
            json={"username": "demo-manager", "password": DEMO_PASSWORD, "kind": "session"},
        )
    assert answer.status_code == 301
    assert answer.headers["location"] == f"https://127.0.0.1:{https_port}/api/v1/auth/login"
    assert "set-cookie" not in answer.headers


def test_https_login_gives_a_secure_cookie_and_hsts(proxied: Proxied) -> None:
    """A client's own X-Forwarded-For is overwritten by nginx: the audit trail keeps the
    address nginx saw, not the one the client claimed."""
    trust = ssl.create_default_context(cafile=str(proxied.pki.ca_file))
    with httpx.Client(verify=trust, timeout=5) as client:
        answer = client.post(
            f"{proxied.https}/api/v1/auth/login",
            json={"username": "demo-manager", "password": DEMO_PASSWORD, "kind": "session"},
            headers={"X-Forwarded-For": "203.0.113.66"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert {"secure", "httponly", "samesite=strict"} <= {
        part.strip().lower() for part in cookie.split(";")
    }
    with proxied.console.sessions() as session:
        ips = session.scalars(
            select(AuditEvent.ip).where(
                AuditEvent.username == "demo-manager", AuditEvent.action == "auth.login"
            )
        ).all()
    assert ips
    assert set(ips) == {"127.0.0.1"}


def trusting_home(folder: Path, pki: Pki) -> Path:
    """A HOME whose NSS store (where chromium on Linux reads user CAs) trusts the test CA."""
    nssdb = folder / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    assert CERTUTIL is not None
    for args in (
        ["-N", "--empty-password"],
        ["-A", "-t", "C,,", "-n", "anju-test-ca", "-i", str(pki.ca_file)],
    ):
        subprocess.run([CERTUTIL, "-d", f"sql:{nssdb}", *args], check=True, capture_output=True)
    return folder


def test_chromium_signs_in_through_nginx_with_the_test_ca(proxied: Proxied, tmp_path: Path) -> None:
    """Without the CA chromium refuses the site; with it the manager reaches the board (the
    console's WebSocket crosses the proxy) and holds a Secure cookie."""
    with sync_playwright() as playwright:
        untrusting = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            env={**os.environ, "HOME": str(tmp_path / "empty")},
        )
        try:
            with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
                untrusting.new_page().goto(f"{proxied.https}/")
        finally:
            untrusting.close()
        home = trusting_home(tmp_path / "home", proxied.pki)
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, env={**os.environ, "HOME": str(home)}
        )
        try:
            page = chromium.new_page(locale="zh-CN")
            page.set_default_timeout(10_000)
            page.goto(f"{proxied.https}/")
            page.fill("input[name=username]", "demo-manager")
            page.fill("input[name=password]", DEMO_PASSWORD)
            page.click("button[type=submit]")
            expect(page).to_have_url(re.compile(r"/board$"))
            expect(page.get_by_text("A-801")).to_be_visible()
            cookie = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
            assert cookie["secure"]
            assert cookie["httpOnly"]
            assert cookie["sameSite"] == "Strict"
        finally:
            chromium.close()
