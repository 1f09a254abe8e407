from __future__ import annotations

import click


@click.group()
def cloud() -> None:
    """The cloud controller: API, ingest and database."""


@cloud.command()
@click.option("--host", default=None, help="Listen address [ANJU_HTTP_HOST, 127.0.0.1].")
@click.option("--port", type=int, default=None, help="HTTP port [ANJU_HTTP_PORT, 8000].")
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Upgrade the database schema before serving.",
)
def serve(host: str | None, port: int | None, migrate: bool) -> None:
    """Serve the HTTP API (and, unless ANJU_INGEST_IN_PROCESS=false, the ingest worker)."""
    import uvicorn

    from anju.runner import setup_logging
    from cloud import migrate as migrations
    from cloud.app import create_app
    from cloud.config import load_settings

    setup_logging()
    settings = load_settings()
    if migrate:
        migrations.upgrade(settings.effective_database_url)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host or settings.http_host,
        port=port or settings.http_port,
        log_level="info",
        access_log=False,
    )


@cloud.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def migrate(revision: str) -> None:
    """Upgrade the database schema (ANJU_DATABASE_URL) to REVISION."""
    from cloud import migrate as migrations
    from cloud.config import load_settings

    settings = load_settings()
    migrations.upgrade(settings.effective_database_url, revision)
    click.echo(f"database at {revision}: {settings.effective_database_url}")


@cloud.command()
def ingest() -> None:
    """Run an ingest worker on its own (several may run side by side)."""
    import os

    from anju.runner import run_until_signal, setup_logging
    from cloud.config import load_settings
    from cloud.db import make_engine, make_sessionmaker
    from cloud.ingest.worker import IngestWorker

    setup_logging()
    settings = load_settings()
    engine = make_engine(settings.effective_database_url)
    worker = IngestWorker(settings, make_sessionmaker(engine), worker_id=f"ingest-{os.getpid()}")
    try:
        run_until_signal(worker.run())
    finally:
        engine.dispose()


@cloud.group()
def gateway() -> None:
    """Register and list gateways."""


@gateway.command("add")
@click.argument("gateway_id")
@click.option("--name", default="", help="A name for people (building, floor).")
def gateway_add(gateway_id: str, name: str) -> None:
    """Register GATEWAY_ID so the cloud accepts its uplink."""
    from cloud.config import load_settings
    from cloud.db import make_engine, make_sessionmaker
    from cloud.ingest.store import register_gateway
    from protocols.mqtt.topics import check_gateway_id

    settings = load_settings()
    engine = make_engine(settings.effective_database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            register_gateway(session, check_gateway_id(gateway_id), name)
    finally:
        engine.dispose()
    click.echo(f"gateway {gateway_id} registered")


def _add_admin_commands() -> None:
    from anju.commands import cloud_admin

    cloud.add_command(cloud_admin.user)
    cloud.add_command(cloud_admin.rotate_keys)
    cloud.add_command(cloud_admin.seed_demo)
    cloud.add_command(cloud_admin.import_cmd)


_add_admin_commands()
