"""`anju cloud keys init | show`, `anju cloud gateway command`: signed commands from a shell."""

from __future__ import annotations

import json

import click


@click.group("keys")
def keys() -> None:
    """The Ed25519 key commands to gateways are signed with; backups of all the keys."""


@keys.command("init")
def keys_init() -> None:
    """Create the command key (ANJU_COMMAND_KEY_FILE, mode 0600); print its public half."""
    from cloud.commands.keys import create_key
    from cloud.config import load_settings
    from protocols.mqtt.commands import public_key_text

    settings = load_settings()
    key = create_key(settings.command_key_path)
    click.echo(f"command key written to {settings.command_key_path}")
    _print_public(public_key_text(key.public_key()))


@keys.command("show")
def keys_show() -> None:
    """Print the public key gateways need (`commands.public_key` in their YAML)."""
    from cloud.commands.keys import read_key
    from cloud.config import load_settings
    from protocols.mqtt.commands import public_key_text

    settings = load_settings()
    _print_public(public_key_text(read_key(settings.command_key_path).public_key()))


def _print_public(text: str) -> None:
    click.echo("put this in each gateway's YAML:")
    click.echo("commands:")
    click.echo(f"  public_key: {text}")


def _arg(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r} is not KEY=VALUE", param_hint="--arg")
    try:
        value: object = json.loads(raw)  # numbers, true/false, null
    except json.JSONDecodeError:
        value = raw
    if isinstance(value, dict | list):
        value = raw
    return key, value


@click.command("command")
@click.argument("gateway_id")
@click.argument("name")
@click.option("--arg", "args", multiple=True, help="KEY=VALUE (a JSON number, true/false/null, "
              "or text); repeat for more.")  # fmt: skip
@click.option("--ttl", type=click.IntRange(5, 86400), default=None,
              help="Seconds the command stays valid [ANJU_COMMAND_TTL_S].")  # fmt: skip
@click.option("--wait/--no-wait", default=False, help="Wait for the gateway's result.")
def gateway_command(
    gateway_id: str, name: str, args: tuple[str, ...], ttl: int | None, wait: bool
) -> None:
    """Sign command NAME for GATEWAY_ID and publish it (ping, door.unlock --arg door=ID)."""
    import asyncio
    import getpass
    from datetime import UTC, datetime, timedelta

    from pydantic import ValidationError

    from cloud.commands import service
    from cloud.commands.keys import signing_key
    from cloud.commands.sender import send_now, wait_for_result
    from cloud.config import load_settings
    from cloud.db import make_engine, make_sessionmaker
    from cloud.models import Gateway
    from protocols.errors import AnjuError

    settings = load_settings()
    key = signing_key(settings)
    engine = make_engine(settings.effective_database_url)
    sessions = make_sessionmaker(engine)

    def now() -> datetime:
        return datetime.now(UTC)

    try:
        with sessions.begin() as session:
            if session.get(Gateway, gateway_id) is None:
                raise AnjuError(f"no gateway {gateway_id!r} (anju cloud gateway add)")
            try:
                row = service.issue(
                    session, key, gateway_id, name, dict(_arg(a) for a in args),
                    issued_by=f"cli:{getpass.getuser()}", now=now(),
                    ttl=timedelta(seconds=ttl or settings.command_ttl_s),
                )  # fmt: skip
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise AnjuError(f"command {name!r}: {where}: {first['msg']}") from None
            command_id, expires_at = row.id, row.expires_at

        async def main() -> None:
            await send_now(settings, sessions, command_id, now())
            click.echo(f"command {command_id} sent to {gateway_id}")
            if wait:
                done = await wait_for_result(sessions, command_id, until=expires_at, now=now)
                out = {"state": done.state, "reason": done.reason, "detail": done.detail,
                       "result": done.result}  # fmt: skip
                click.echo(json.dumps(out, ensure_ascii=False, sort_keys=True))
                if done.state != "done":
                    raise SystemExit(1)

        asyncio.run(main())
    finally:
        engine.dispose()
