"""One console server (uvicorn on a free loopback port, the seeded demo portfolio) and one
Debian chromium for the whole console session; each test gets a fresh browser context."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from nicegui import app as nicegui_app
from nicegui import run as nicegui_run
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from cloud import migrate
from cloud.app import create_app
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker
from cloud.models import LoginAttempt
from cloud.security.crypto import FieldKeys, generate_key
from cloud.seed import DEMO_PASSWORD, seed_demo
from tests.conftest import DATABASE_URL, THREAD_GRACE_S, free_port, postgres_schema

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags chromium waits on services it cannot reach offline.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 15.0
SERVER_POOL_THREAD = "AnyIO worker thread"


@dataclass(frozen=True)
class Console:
    url: str
    sessions: sessionmaker[Session]
    app: FastAPI


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@pytest.fixture(scope="session")
def console() -> Iterator[Console]:
    with running_console() as served:
        yield served


@contextmanager
def behind_tls_proxy(console: Console) -> Iterator[Console]:
    """The running console as in production behind nginx on this host (Secure cookie, the
    proxy's X-Forwarded-For trusted) until the block ends. NiceGUI mounts once per process, so
    a test that wants this changes the one console rather than starting another."""
    app = console.app
    before = app.state.settings
    settings = before.model_copy(update={"cookie_secure": True, "trusted_proxies": "127.0.0.1"})
    app.state.settings = settings
    app.state.proxies = nicegui_app.state.proxies = settings.proxies
    try:
        yield console
    finally:
        app.state.settings = before
        app.state.proxies = nicegui_app.state.proxies = before.proxies


@contextmanager
def running_console() -> Iterator[Console]:
    """The seeded demo portfolio behind a console on a free loopback port (also used by
    tools/console_screenshots.py)."""
    with ExitStack() as stack:
        if DATABASE_URL:
            url = stack.enter_context(postgres_schema())
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url = f"sqlite:///{folder / 'console.db'}"
        migrate.upgrade(url)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        sessions = make_sessionmaker(engine)
        keys = FieldKeys(current="k1", keys={"k1": generate_key()}, index_key=generate_key())
        with sessions() as session:
            seed_demo(session, keys, NOW)
            session.commit()
        settings = Settings(env="development", secret_key="x" * 40, cookie_secure=False)
        app = create_app(settings, sessions=sessions, keys=keys, clock=lambda: NOW, console=True)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, name="console-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            assert time.monotonic() < deadline, "the console server did not start"
            time.sleep(0.05)
        try:
            yield Console(url=f"http://127.0.0.1:{port}", sessions=sessions, app=app)
        finally:
            server.should_exit = True
            thread.join(START_TIMEOUT_S)
            assert not thread.is_alive(), "the console server did not stop"


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """As the suite's guard, but the server's own worker pools (AnyIO's for its sync routes,
    NiceGUI's for long page actions) outlive a test by design; they end with the server, whose
    thread is joined."""
    before = set(threading.enumerate())
    yield
    pools = set(getattr(nicegui_run.thread_pool, "_threads", ()))
    leaked = [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and t.name != SERVER_POOL_THREAD and t not in pools
    ]
    for thread in leaked:
        thread.join(THREAD_GRACE_S)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"test left threads running: {still}"


@pytest.fixture(autouse=True)
def no_leaked_tasks(no_leaked_threads: None) -> None:
    """Replaces the async leak guard here: Playwright's sync API keeps its own event loop
    current in this thread, so no other loop may run in it. These tests start no tasks of
    their own; the server's loop lives in its thread and ends with it."""
    return


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: while Playwright is open no asyncio test can run in this thread."""
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, console: Console, username: str, password: str = DEMO_PASSWORD) -> None:
    """The server's clock stands still, so every sign-in of the session would fall in one
    login-throttle window of the loopback source: each sign-in starts with that window empty."""
    with console.sessions() as session:
        session.execute(delete(LoginAttempt))
        session.commit()
    page.goto(f"{console.url}/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
