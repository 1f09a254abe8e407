"""The FastAPI application factory: engines and workers start in the lifespan, not at import."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from cloud.api.problems import install_problem_handlers
from cloud.api.routes import face, readings
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.worker import IngestWorker


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
    install_problem_handlers(app)
    app.include_router(readings.router, prefix="/api/v1")
    app.include_router(face.router, prefix="/api/v1")
    return app
