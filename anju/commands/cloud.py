from __future__ import annotations

from typing import Any

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
    """Serve the HTTP API, the web console at / and (unless ANJU_INGEST_IN_PROCESS=false)
    the ingest worker."""
    import uvicorn

    from anju.runner import setup_logging
    from cloud import migrate as migrations
    from cloud.app import create_app
    from cloud.config import load_settings

    setup_logging()
    settings = load_settings()
    if migrate:
        migrations.upgrade(settings.effective_database_url)
    app = create_app(settings, console=True)
    uvicorn.run(app, **uvicorn_options(host or settings.http_host, port or settings.http_port))


def uvicorn_options(host: str, port: int) -> dict[str, Any]:
    """How `serve` runs uvicorn. Its proxy headers are off: by default it believes
    X-Forwarded-For from 127.0.0.1, so anyone on the host (or a proxy passing a client's header
    through) could choose the address the throttle and the audit log see; the app reads the
    header from ANJU_TRUSTED_PROXIES only (cloud.security.client_address)."""
    return {
        "host": host,
        "port": port,
        "log_level": "info",
        "access_log": False,
        "proxy_headers": False,
    }


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
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    envvar="ANJU_INGEST_METRICS_PORT",
    help="Serve Prometheus text at http://HOST:PORT/metrics [ANJU_INGEST_METRICS_PORT; off].",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    envvar="ANJU_INGEST_METRICS_HOST",
    help="Address the metrics endpoint listens on.",
)
def ingest(metrics_port: int | None, metrics_host: str) -> None:
    """Run an ingest worker and a command dispatcher (several may run side by side)."""
    import asyncio
    import os

    from anju.runner import run_until_signal, setup_logging
    from cloud.access.publisher import publisher_for
    from cloud.app import field_keys_for
    from cloud.commands.dispatcher import CommandDispatcher
    from cloud.commands.keys import key_reader
    from cloud.config import load_settings
    from cloud.db import make_engine, make_sessionmaker
    from cloud.fleet.remote_config import Resender
    from cloud.ingest.metrics_http import serve_metrics
    from cloud.ingest.worker import IngestWorker
    from runtime.clock import utc_now
    from runtime.tasks import until_one_fails

    setup_logging()
    settings = load_settings()
    engine = make_engine(settings.effective_database_url)
    sessions = make_sessionmaker(engine)
    worker = IngestWorker(
        settings,
        sessions,
        worker_id=f"ingest-{os.getpid()}",
        resender=Resender(key_reader(settings)),
    )
    dispatcher = CommandDispatcher(
        settings, sessions, worker.metrics, name=f"commands-{os.getpid()}"
    )
    access = publisher_for(settings, sessions, field_keys_for(settings), now=utc_now)

    async def main() -> None:
        server = None
        if metrics_port is not None:
            server = serve_metrics(worker.metrics.registry, metrics_host, metrics_port)
        try:
            await until_one_fails(
                {"ingest": worker.run(), "commands": dispatcher.run(), "access": access.run()}
            )
        finally:
            if server is not None:
                await asyncio.to_thread(server.shutdown)
                server.server_close()

    try:
        run_until_signal(main())
    finally:
        engine.dispose()


@cloud.group()
def gateway() -> None:
    """Register and list gateways; send them signed commands."""


@gateway.command("add")
@click.argument("gateway_id")
@click.option("--name", default="", help="A name for people (building, floor).")
@click.option("--building", default="", help="The building the gateway serves (a label).")
@click.option(
    "--property",
    "property_id",
    type=click.IntRange(min=1),
    default=None,
    help="The property (id) it serves: staff of that property see it in the API.",
)
@click.option(
    "--credential/--no-credential",
    default=True,
    show_default=True,
    help="Generate a new MQTT password for the gateway (printed once, stored hashed).",
)
@click.option(
    "--credential-stdin",
    is_flag=True,
    help="Read the gateway's MQTT password from stdin (a vault, a script) instead.",
)
def gateway_add(
    gateway_id: str,
    name: str,
    building: str,
    property_id: int | None,
    credential: bool,
    credential_stdin: bool,
) -> None:
    """Register GATEWAY_ID so the cloud accepts its uplink (again: update it). Its broker login
    is its id and the password; Mosquitto sees it after `anju cloud broker-auth export`."""
    from anju.commands.broker_auth import read_secret_line
    from cloud.config import load_settings
    from cloud.db import make_engine, make_sessionmaker
    from cloud.ingest.store import register_gateway
    from cloud.models import Property
    from cloud.security.broker_credentials import new_secret
    from protocols.mqtt.topics import check_gateway_id

    if credential_stdin and not credential:
        raise click.UsageError("--credential-stdin and --no-credential contradict each other")
    settings = load_settings()
    password = (read_secret_line() if credential_stdin else new_secret()) if credential else None
    engine = make_engine(settings.effective_database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            if property_id is not None and session.get(Property, property_id) is None:
                raise click.BadParameter(f"no property {property_id}", param_hint="--property")
            register_gateway(
                session,
                check_gateway_id(gateway_id),
                name,
                building=building,
                property_id=property_id,
                credential=password,
            )
    finally:
        engine.dispose()
    click.echo(f"gateway {gateway_id} registered")
    if password is not None and not credential_stdin:
        click.echo(f"mqtt password (shown once; put it in the gateway's mqtt.password): {password}")


@gateway.command("list")
def gateway_list() -> None:
    """List registered gateways with their link state."""
    from sqlalchemy import select

    from cloud.config import load_settings
    from cloud.db import make_engine, make_sessionmaker
    from cloud.models import Gateway

    settings = load_settings()
    engine = make_engine(settings.effective_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            rows = session.scalars(select(Gateway).order_by(Gateway.id)).all()
    finally:
        engine.dispose()
    header = f"{'ID':<24} {'ONLINE':<6} {'STORED SEQ':>10} {'PENDING':>8} {'DROPPED':>8}  LAST SEEN"
    click.echo(header)
    for g in rows:
        seen = g.last_seen.isoformat(timespec="seconds") if g.last_seen else "never"
        click.echo(
            f"{g.id:<24} {'yes' if g.online else 'no':<6} {g.stored_seq:>10} {g.pending:>8}"
            f" {g.dropped:>8}  {seen}  {g.name} {g.building}".rstrip()
        )


def _add_admin_commands() -> None:
    from anju.commands import (
        broker_auth,
        cloud_admin,
        cloud_backup,
        cloud_calendar,
        cloud_commands,
        cloud_fleet,
        cloud_jobs,
        cloud_meters,
        gateway_meters,
    )

    cloud.add_command(cloud_admin.user)
    cloud.add_command(cloud_admin.rotate_keys)
    cloud.add_command(cloud_admin.seed_demo)
    cloud.add_command(cloud_admin.import_cmd)
    cloud.add_command(cloud_admin.bill)
    cloud.add_command(cloud_commands.keys)
    cloud.add_command(cloud_backup.backup)
    cloud.add_command(cloud_backup.restore)
    for command in (cloud_backup.keys_backup, cloud_backup.keys_restore, cloud_backup.keys_check):
        cloud_commands.keys.add_command(command)
    gateway.add_command(cloud_commands.gateway_command)
    gateway.add_command(gateway_meters.gateway_meters)
    gateway.add_command(cloud_fleet.enroll_token)
    cloud.add_command(broker_auth.service_account)
    cloud.add_command(broker_auth.broker_auth)
    cloud.add_command(cloud_calendar.calendar)
    cloud.add_command(cloud_meters.meter)
    cloud.add_command(cloud_jobs.jobs)


_add_admin_commands()
