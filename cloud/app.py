"""The FastAPI application factory: engines and workers start in the lifespan, not at import."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib.metadata import version
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI, Request, Response
from sqlalchemy.orm import sessionmaker

from cloud.access.publisher import publisher_for
from cloud.api.problems import install_problem_handlers, problem_response
from cloud.api.routes import (
    alarm_notify,
    alarms,
    assets,
    audit,
    auth,
    billing,
    billing_rules,
    commands,
    contracts,
    doors,
    face,
    fleet,
    gateway_config,
    gateways,
    imports,
    jobs,
    leases,
    meter_swaps,
    parts,
    portfolio,
    readings,
    tenants,
    users,
    work_orders,
)
from cloud.api.text import refuse_unstorable_text
from cloud.commands.dispatcher import CommandDispatcher
from cloud.commands.keys import key_reader
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker, refresh_statistics
from cloud.fleet.remote_config import Resender
from cloud.ingest.worker import IngestWorker
from cloud.jobs.billing import JobSettings
from cloud.jobs.registry import cloud_jobs
from cloud.jobs.scheduler import run_forever
from cloud.security.crypto import FieldKeys, load_field_keys
from runtime.clock import utc_now

ROUTERS = (
    auth,
    users,
    portfolio,
    meter_swaps,
    tenants,
    leases,
    contracts,
    audit,
    readings,
    face,
    billing,
    billing_rules,
    imports,
    gateways,
    commands,
    fleet,
    gateway_config,
    work_orders,
    alarms,
    alarm_notify,
    doors,
    assets,
    parts,
    jobs,
)


async def scheduler(app: FastAPI, job_settings: JobSettings, clock: Callable[[], datetime]) -> None:
    """Billing runs, late fees, reminders and the face purge at their times (one instance
    per job and day), on the calendar of ANJU_TIMEZONE."""
    settings: Settings = app.state.settings
    await run_forever(
        app.state.sessions,
        cloud_jobs(settings, app.state.keys, job_settings),
        clock=clock,
        holder=f"{socket.gethostname()}:{os.getpid()}",
        tz=settings.zone,
    )


def field_keys_for(settings: Settings) -> FieldKeys:
    return load_field_keys(
        spec=settings.field_keys,
        index_key=settings.index_key,
        data_dir=settings.data_dir,
        development=settings.env == "development",
    )


def create_app(
    settings: Settings,
    *,
    sessions: sessionmaker[Any] | None = None,
    keys: FieldKeys | None = None,
    clock: Callable[[], datetime] = utc_now,
    command_key: Ed25519PrivateKey | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    console: bool = False,
) -> FastAPI:
    """`sessions`, `keys`, `clock` and `command_key` are injected by tests; by default they
    come from settings (the command key when the first command is sent). `sleep` takes the
    in-process ingest's backoff pauses (tests drive them). `console` mounts the managers' web
    console at `/` (NiceGUI: one per process, so `serve` asks for it and API tests do not)."""

    def given_key() -> Ed25519PrivateKey:
        assert command_key is not None
        return command_key

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if sessions is not None:
            app.state.sessions = sessions
            yield
            return
        engine = make_engine(settings.effective_database_url)
        app.state.sessions = make_sessionmaker(engine)
        await asyncio.to_thread(refresh_statistics, engine)
        tasks = []
        try:
            if settings.ingest_in_process:
                worker = IngestWorker(
                    settings,
                    app.state.sessions,
                    sleep=sleep,
                    resender=Resender(
                        given_key if command_key is not None else key_reader(settings)
                    ),
                )
                app.state.ingest = worker
                app.state.ingest_task = asyncio.create_task(worker.run(), name="ingest")
                tasks.append(app.state.ingest_task)
                dispatcher = CommandDispatcher(settings, app.state.sessions, worker.metrics)
                app.state.commands = dispatcher
                tasks.append(asyncio.create_task(dispatcher.run(), name="commands"))
                access = publisher_for(
                    settings,
                    app.state.sessions,
                    app.state.keys,
                    now=clock,
                    signing_key=given_key if command_key is not None else None,
                )
                app.state.access = access
                tasks.append(asyncio.create_task(access.run(), name="access"))
            job_settings = JobSettings()
            if job_settings.jobs_in_process:
                tasks.append(asyncio.create_task(scheduler(app, job_settings, clock), name="jobs"))
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            engine.dispose()

    app = FastAPI(
        title="Anju cloud",
        version=version("anju"),
        lifespan=lifespan,
        dependencies=[Depends(refuse_unstorable_text)],  # before any route, guard or database
    )
    app.state.settings = settings
    app.state.keys = keys if keys is not None else field_keys_for(settings)
    app.state.clock = clock
    app.state.proxies = settings.proxies
    app.state.command_key = command_key
    install_problem_handlers(app)

    @app.get("/healthz", include_in_schema=False, response_model=None)
    def healthz(request: Request) -> dict[str, str] | Response:
        """Liveness: the process answers (no database round trip), and its in-process ingest
        worker is not down after a failure (503 while it restarts)."""
        worker = getattr(app.state, "ingest", None)
        task = getattr(app.state, "ingest_task", None)
        if worker is not None and (worker.down or (task is not None and task.done())):
            return problem_response(request, 503, "ingest is down after a failure (see the log)")
        return {"status": "ok"}

    for module in ROUTERS:
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(gateways.metrics_router)
    if console:
        from cloud.console.mount import mount_console  # noqa: PLC0415 - NiceGUI loads only here

        mount_console(app)
    return app
