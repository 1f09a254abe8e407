"""`anju cloud user add | passwd | deactivate | activate | revoke-sessions | rotate-keys |
seed-demo | import | bill`: records, keys and billing runs, from the shell."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from cloud.config import Settings
    from cloud.security.crypto import FieldKeys


@contextmanager
def cloud_session() -> Iterator[tuple[Settings, Session, FieldKeys]]:
    """Settings, a session (the command commits) and the field keys."""
    from cloud.app import field_keys_for
    from cloud.config import load_settings
    from cloud.db import make_engine, make_sessionmaker, refresh_statistics

    settings = load_settings()
    keys = field_keys_for(settings)
    engine = make_engine(settings.effective_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            yield settings, session, keys
        refresh_statistics(engine)  # after bulk changes (seed, import, rotation)
    finally:
        engine.dispose()


def _org(session: Session, name: str | None, *, create: bool = False) -> Any:
    from sqlalchemy import select

    from cloud.models import Organisation
    from protocols.errors import AnjuError

    orgs = list(session.scalars(select(Organisation).order_by(Organisation.id)))
    if name is None:
        if len(orgs) == 1:
            return orgs[0]
        raise AnjuError("name the organisation with --org" if orgs else "no organisation yet")
    for org in orgs:
        if org.name == name:
            return org
    if not create:
        raise AnjuError(f"no organisation named {name!r}")
    org = Organisation(name=name)
    session.add(org)
    session.flush()
    return org


@click.group("user")
def user() -> None:
    """Logins for staff and tenants."""


@user.command("add")
@click.argument("username")
@click.option(
    "--role",
    required=True,
    type=click.Choice(
        ["admin", "manager", "front_desk", "finance", "maintenance", "installer", "tenant"]
    ),
)
@click.option("--org", "org_name", default=None, help="Organisation (created if new).")
@click.option("--property", "property_ids", type=int, multiple=True, help="Property id (repeat).")
@click.option("--tenant-id", type=int, default=None, help="For --role tenant: the person.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Asked for when not given (prefer the prompt: shell history keeps options).",
)
def user_add(
    username: str,
    role: str,
    org_name: str | None,
    property_ids: tuple[int, ...],
    tenant_id: int | None,
    password: str,
) -> None:
    """Create USERNAME with an argon2id password; the first admin creates the organisation."""
    from sqlalchemy import select

    from cloud.models import Property, Role, User, UserProperty
    from cloud.security.passwords import hash_password
    from protocols.errors import AnjuError

    now = datetime.now(UTC)
    with cloud_session() as (_settings, session, _keys):
        org = _org(session, org_name, create=role == "admin")
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise AnjuError(f"username {username!r} is taken")
        for pid in property_ids:
            prop = session.get(Property, pid)
            if prop is None or prop.org_id != org.id:
                raise AnjuError(f"--property {pid}: no such property in {org.name!r}")
        new = User(
            org_id=org.id,
            username=username,
            password_hash=hash_password(password),
            role=Role(role),
            tenant_id=tenant_id,
            created_at=now,
        )
        session.add(new)
        session.flush()
        session.add_all(UserProperty(user_id=new.id, property_id=p) for p in set(property_ids))
        _audit(session, "user.create", now, new.id, role=role)
        session.commit()
    click.echo(f"user {username} ({role}) created in {org.name}")


def _audit(session: Session, action: str, now: datetime, user_id: int, **detail: object) -> None:
    """An audit event by the shell's operator (`cli`) about a user."""
    from cloud.security import audit

    audit.record(
        session,
        None,
        action,
        now,
        username="cli",
        target_type="user",
        target_id=user_id,
        detail={**detail, "via": "cli"},
    )


def _user(session: Session, username: str) -> Any:
    from sqlalchemy import select

    from cloud.models import User
    from protocols.errors import AnjuError

    found = session.scalar(select(User).where(User.username == username))
    if found is None:
        raise AnjuError(f"no user named {username!r}")
    return found


@contextmanager
def _changing(username: str, action: str) -> Iterator[tuple[Session, Any, dict[str, object]]]:
    """USERNAME's row in a session; after the block, `action` is audited with the detail the
    block filled in, and committed."""
    now = datetime.now(UTC)
    with cloud_session() as (_settings, session, _keys):
        found = _user(session, username)
        detail: dict[str, object] = {}
        yield session, found, detail
        _audit(session, action, now, found.id, **detail)
        session.commit()


@user.command("passwd")
@click.argument("username")
@click.option(
    "--password",
    prompt="New password",
    hide_input=True,
    confirmation_prompt=True,
    help="Asked for when not given (prefer the prompt: shell history keeps options).",
)
def user_passwd(username: str, password: str) -> None:
    """Set USERNAME's password (a forgotten one: no old password asked); their sessions end."""
    from cloud.security import accounts

    with _changing(username, "user.password") as (session, found, detail):
        detail["sessions_revoked"] = accounts.set_password(session, found, password)
    click.echo(f"password of {username} set; {detail['sessions_revoked']} session(s) revoked")


@user.command("deactivate")
@click.argument("username")
def user_deactivate(username: str) -> None:
    """USERNAME can no longer sign in; every session of theirs ends now."""
    from cloud.security import accounts

    with _changing(username, "user.deactivate") as (session, found, detail):
        detail["sessions_revoked"] = accounts.deactivate(session, found)
    click.echo(f"user {username} deactivated; {detail['sessions_revoked']} session(s) revoked")


@user.command("activate")
@click.argument("username")
def user_activate(username: str) -> None:
    """USERNAME may sign in again."""
    with _changing(username, "user.activate") as (_session, found, _detail):
        found.active = True
    click.echo(f"user {username} activated")


@user.command("revoke-sessions")
@click.argument("username")
def user_revoke_sessions(username: str) -> None:
    """End every session and bearer token of USERNAME (a lost phone, a leaked token)."""
    from cloud.security import accounts

    with _changing(username, "user.revoke_sessions") as (session, found, detail):
        detail["revoked"] = accounts.revoke_sessions(session, found.id)
    click.echo(f"{detail['revoked']} session(s) of {username} revoked")


@click.command("rotate-keys")
@click.option(
    "--new-key", is_flag=True, help="Add a fresh current key to <data dir>/field-keys.json first."
)
def rotate_keys(new_key: bool) -> None:
    """Re-encrypt every sealed value (personal data, faces, door secrets, kept access lists)
    under the current field key, and rebuild blind indexes."""
    from cloud.app import field_keys_for
    from cloud.config import load_settings
    from cloud.security import crypto, rotation
    from protocols.errors import AnjuError

    settings = load_settings()
    if new_key:
        if settings.field_keys:
            raise AnjuError("keys come from ANJU_FIELD_KEYS: put the new key first there instead")
        path = settings.data_dir / crypto.KEY_FILE
        old = crypto.read_key_file(path) if path.exists() else None
        if old is None and settings.env == "development":
            old = crypto.development_keys()
        ring = rotation.new_key_ring(old, f"k{datetime.now(UTC):%Y%m%d%H%M%S}")
        crypto.write_key_file(path, ring)
        click.echo(f"new current key {ring.current} written to {path}")
    keys = field_keys_for(settings)
    with cloud_session() as (_settings, session, _keys):
        counts = rotation.rotate(session, keys)
        left = rotation.stale_count(session, keys)
    for column, n in counts.items():
        click.echo(f"{column}: {n} re-encrypted")
    click.echo(f"current key {keys.current}; envelopes under older keys: {left}")


@click.command("seed-demo")
def seed_demo() -> None:
    """Add the demo portfolio (2 properties, 3 buildings, 120 units, leases in every state);
    does nothing when it is there already."""
    from cloud import seed
    from cloud.config import load_settings
    from protocols.errors import AnjuError

    if load_settings().env != "development":
        raise AnjuError(
            "seed-demo creates logins with a published password: it runs only with"
            " ANJU_ENV=development"
        )
    with cloud_session() as (_settings, session, keys):
        try:
            summary = seed.seed_demo(session, keys, datetime.now(UTC))
        except seed.AlreadySeededError as exc:
            click.echo(f"{exc}; nothing to do")
            return
        session.commit()
    click.echo(
        f"seeded {summary.properties} properties, {summary.buildings} buildings, "
        f"{summary.units} units, {summary.meters} meters, {summary.tenants} tenants; "
        f"leases {dict(sorted(summary.leases.items()))}"
    )
    click.echo(f"logins ({', '.join(summary.users)}) password: {seed.DEMO_PASSWORD}")


@click.command("import")
@click.argument("kind", type=click.Choice(["units", "tenants", "leases"]))
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--org", "org_name", default=None, help="Organisation (needed if several).")
@click.option(
    "--encoding", type=click.Choice(["auto", "utf-8", "gbk"]), default="auto", show_default=True
)
@click.option("--dry-run", is_flag=True, help="Check every row; import nothing.")
@click.option("--skip-bad", is_flag=True, help="Import the good rows even if some are bad.")
@click.option("--quiet", is_flag=True, help="No progress bar (none is drawn off a terminal).")
def import_cmd(
    kind: str,
    csv_file: Path,
    org_name: str | None,
    encoding: str,
    dry_run: bool,
    skip_bad: bool,
    quiet: bool,
) -> None:
    """Import KIND (units, then tenants, then leases) from an old system's CSV file.

    Streamed in one transaction: every bad row is listed (line, column, reason), and nothing is
    kept unless all rows are good or --skip-bad is given."""
    import sys

    from cloud.importer.csvfile import Lines, detect
    from cloud.importer.load import Kind, RowError, import_csv

    def report_row(err: RowError) -> None:
        click.echo(str(err), err=True)

    with csv_file.open("rb") as f, cloud_session() as (_settings, session, keys):
        lines = Lines(f, detect(f) if encoding == "auto" else encoding)
        org = _org(session, org_name)
        bar = click.progressbar(
            length=csv_file.stat().st_size, label=f"{kind} ({lines.encoding})", file=sys.stderr
        )
        shown = not quiet and sys.stderr.isatty()
        done = 0

        def progress(total: int) -> None:
            nonlocal done
            if shown:
                bar.update(total - done)
            done = total

        try:
            report = import_csv(session, keys, org, Kind(kind), lines,
                                now=datetime.now(UTC), on_error=report_row,
                                on_progress=progress)  # fmt: skip
        finally:
            if shown:
                bar.render_finish()
        applied = not dry_run and (report.bad == 0 or skip_bad)
        if applied:
            session.commit()
        else:
            session.rollback()
    verdict = "imported" if applied else "nothing imported"
    click.echo(
        f"{kind}: {report.rows} rows, {report.bad} bad, "
        f"{report.created} new, {report.unchanged} already there; {verdict}"
    )
    if report.bad and not applied and not dry_run:
        raise SystemExit(1)


@click.command("bill")
@click.argument("property_id", type=int)
@click.argument("period")
def bill(property_id: int, period: str) -> None:
    """Run (or re-run) PROPERTY_ID's billing for PERIOD (YYYY-MM): that month's rent, the month
    before's utilities. What it could not bill is listed, with why, and held for review."""
    from cloud.billing.service.runs import run_billing

    with cloud_session() as (settings, session, _keys):
        run = run_billing(session, property_id, period, now=datetime.now(UTC), tz=settings.zone,
                          max_back_months=settings.billing_max_back_months)  # fmt: skip
        session.commit()
        click.echo(
            f"billing run {run.property_id} {run.period}: {run.invoices_created} invoices, "
            f"{run.lines_created} lines, {len(run.skipped)} skipped"
        )
        for item in run.skipped:
            lease = f"lease {item['lease_id']} " if item["lease_id"] is not None else ""
            click.echo(f"skipped {lease}{item['item']}: {item['reason']}")
