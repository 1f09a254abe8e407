"""`anju cloud gateway enroll-token`: a one-time token (and its QR code) for a new gateway."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click


@click.command("enroll-token")
@click.option("--property", "property_id", required=True, type=click.IntRange(min=1))
@click.option("--gateway-id", default=None, help="The new gateway's id (default: made up).")
@click.option("--name", default="", help="A name for people (building, floor).")
@click.option("--building", default="", help="The building it serves (a label).")
@click.option(
    "--ttl-hours",
    default=24.0,
    show_default=True,
    type=click.FloatRange(min=0.1, max=168),
    help="How long the token can be used.",
)
@click.option(
    "--cloud-url",
    default="https://cloud.example.invalid",
    show_default=True,
    help="The cloud's URL as the gateway reaches it (goes into the printed command).",
)
@click.option(
    "--qr",
    "qr_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the command as a QR code image (PNG or SVG, by the name's suffix).",
)
def enroll_token(
    property_id: int,
    gateway_id: str | None,
    name: str,
    building: str,
    ttl_hours: float,
    cloud_url: str,
    qr_file: Path | None,
) -> None:
    """Issue an enrolment token for a new gateway of PROPERTY; printed once, stored hashed."""
    import segno

    from anju.commands.cloud_admin import cloud_session
    from cloud.fleet.enrolment import issue_token
    from cloud.models import Property
    from protocols.errors import AnjuError

    now = datetime.now(UTC)
    with cloud_session() as (_settings, session, _keys):
        if session.get(Property, property_id) is None:
            raise AnjuError(f"--property {property_id}: no such property")
        issued = issue_token(
            session,
            property_id=property_id,
            now=now,
            created_by="cli",
            gateway_id=gateway_id,
            name=name,
            building=building,
            ttl=timedelta(hours=ttl_hours),
        )
        session.commit()
    command = f"anju edge enroll --token {issued.token} --cloud {cloud_url.rstrip('/')}"
    click.echo(f"gateway {issued.gateway_id}: token valid until {issued.expires_at.isoformat()}")
    click.echo(f"run on the box (shown once): {command}")
    code = segno.make(command, error="m")
    if qr_file is not None:
        code.save(str(qr_file), scale=6)
        click.echo(f"QR code written to {qr_file}")
    elif sys.stdout.isatty():
        code.terminal(compact=True)
