"""`anju cloud service-account add` and `anju cloud broker-auth export`: the broker's logins."""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import click


def read_secret_line() -> str:
    """One line from stdin: a password from a vault or a script, never from the command line
    (shell history and `ps` show arguments)."""
    from cloud.broker_accounts import check_secret

    return check_secret(sys.stdin.readline().strip())


@click.group("service-account")
def service_account() -> None:
    """Broker logins of cloud services (ingest, command sender)."""


@service_account.command("add")
@click.argument("name")
@click.option(
    "--credential-stdin",
    is_flag=True,
    help="Read the password from stdin (e.g. from a vault) instead of generating one.",
)
def service_account_add(name: str, credential_stdin: bool) -> None:
    """Create service account NAME (again: give it a new password). It may read every
    gateway's uplink and write downlink; the services log in with ANJU_MQTT_USERNAME=NAME and
    ANJU_MQTT_PASSWORD."""
    from cloud.broker_accounts import register_service
    from cloud.config import load_settings
    from cloud.db import make_engine, make_sessionmaker
    from cloud.security.broker_credentials import new_secret

    secret = read_secret_line() if credential_stdin else new_secret()
    settings = load_settings()
    engine = make_engine(settings.effective_database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            register_service(session, name, secret, datetime.now(UTC))
    finally:
        engine.dispose()
    click.echo(f"service account {name} registered")
    if not credential_stdin:
        click.echo(f"mqtt password (shown once; put it in ANJU_MQTT_PASSWORD): {secret}")


@click.group("broker-auth")
def broker_auth() -> None:
    """The registry's logins and topic rules, for a broker that cannot read the database."""


@broker_auth.command("export")
@click.option(
    "--password-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Mosquitto password_file to write.",
)
@click.option(
    "--acl-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Mosquitto acl_file to write.",
)
@click.option(
    "--reload-pid",
    type=click.IntRange(min=1),
    default=None,
    help="Send SIGHUP to this Mosquitto process if a file changed (or: systemctl reload"
    " mosquitto).",
)
@click.option(
    "--reload-pid-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The same, the pid read from Mosquitto's pid_file (e.g. /run/mosquitto/mosquitto.pid).",
)
def broker_auth_export(
    password_file: Path, acl_file: Path, reload_pid: int | None, reload_pid_file: Path | None
) -> None:
    """Write every gateway's and service account's login and topics as Mosquitto files.

    Each file is replaced atomically and only when its content changed. Gateways whose
    credential is in the old (scrypt) format cannot be exported: they are listed, and need
    `anju cloud gateway add ID` again (a new password for their config).
    """
    from cloud.broker_accounts import all_accounts
    from cloud.config import load_settings
    from cloud.db import make_engine, make_sessionmaker
    from cloud.mosquitto_files import render, replace_file

    settings = load_settings()
    engine = make_engine(settings.effective_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            auth = render(all_accounts(session))
    finally:
        engine.dispose()
    changed = [
        str(path)
        for path, text in ((password_file, auth.password_file), (acl_file, auth.acl_file))
        if replace_file(path, text)
    ]
    click.echo(
        f"{len(auth.exported)} logins exported; "
        + (f"written: {', '.join(changed)}" if changed else "files unchanged")
    )
    if auth.needs_rotation:
        click.echo(
            "needs a credential rotation (an old hash Mosquitto cannot check; run `anju cloud"
            " gateway add ID` and put the new password in its config): "
            + ", ".join(auth.needs_rotation),
            err=True,
        )
    if auth.no_credential:
        click.echo("no credential, cannot log in: " + ", ".join(auth.no_credential), err=True)
    if changed and reload_pid_file is not None:
        reload_pid = _pid_from(reload_pid_file)
    if changed and reload_pid is not None:
        try:
            os.kill(reload_pid, signal.SIGHUP)
        except ProcessLookupError:
            click.echo(
                f"no process {reload_pid}: Mosquitto reads the files when it starts", err=True
            )
            return
        click.echo(f"sent SIGHUP to {reload_pid}")


def _pid_from(path: Path) -> int | None:
    """Mosquitto's pid, or None when it is not running (it reads the new files at start)."""
    from protocols.errors import AnjuError

    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        click.echo(f"{path} is missing: Mosquitto is not running; nothing to reload", err=True)
        return None
    if not text.isdigit() or int(text) < 1:
        raise AnjuError(f"{path}: not a process id: {text[:20]!r}")
    return int(text)
