"""The FastAPI application factory: engines and workers start in the lifespan, not at import."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import sessionmaker

from cloud.api.problems import install_problem_handlers
from cloud.api.routes import (
    audit,
    auth,
    contracts,
    face,
    leases,
    portfolio,
    readings,
    tenants,
    users,
)
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.worker import IngestWorker
from cloud.security.crypto import FieldKeys, load_field_keys
from cloud.security.throttle import LoginThrottle

ROUTERS = (auth, users, portfolio, tenants, leases, contracts, audit, readings, face)


def utc_now() -> datetime:
    return datetime.now(UTC)


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
) -> FastAPI:
    """`sessions`, `keys` and `clock` are injected by tests; by default they come from settings."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if sessions is not None:
            app.state.sessions = sessions
            yield
            return
        engine = make_engine(settings.effective_database_url)
        app.state.sessions = make_sessionmaker(engine)
        try:
            if settings.ingest_in_process:
                worker = IngestWorker(settings, app.state.sessions)
                app.state.ingest = worker
                task = asyncio.create_task(worker.run(), name="ingest")
                try:
                    yield
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            else:
                yield
        finally:
            engine.dispose()

    app = FastAPI(title="Anju cloud", version=version("anju"), lifespan=lifespan)
    app.state.settings = settings
    app.state.keys = keys if keys is not None else field_keys_for(settings)
    app.state.clock = clock
    app.state.throttle = LoginThrottle()
    install_problem_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router, prefix="/api/v1")
    return app
