from __future__ import annotations

from pathlib import Path

import click


@click.group()
def edge() -> None:
    """The building gateway."""


GATEWAY_CONFIG = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The gateway's YAML file (see firmware-configs/gateways/).",
)


@edge.command()
@GATEWAY_CONFIG
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def run(config_path: Path, verbose: bool) -> None:
    """Run the gateway: meter pollers, doors, uplink and services from CONFIG."""
    from anju.runner import run_gateway_file

    run_gateway_file(config_path, verbose)


@edge.command()
@click.option("--token", required=True, help="The one-time enrolment token from the cloud.")
@click.option("--cloud", "cloud_url", required=True, help="The cloud's URL (https://HOST).")
@click.option(
    "--config",
    "config_path",
    default=Path("/etc/anju/gateway.yaml"),
    show_default=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the gateway's configuration (owner-only).",
)
@click.option(
    "--store",
    "store_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The gateway's store (default: data/gateway.db beside the config).",
)
@click.option("--force", is_flag=True, help="Replace an existing configuration.")
def enroll(
    token: str, cloud_url: str, config_path: Path, store_path: Path | None, force: bool
) -> None:
    """Enrol this box: fetch its identity, MQTT login, CA and first configuration."""
    from edge.enrol import enrol

    config = enrol(cloud_url, token, config_path, store=store_path, force=force)
    click.echo(f"enrolled as gateway {config.gateway_id}; configuration in {config_path}")
    click.echo(f"start it with: anju edge run --config {config_path}")


@edge.command()
@click.option(
    "--profile", required=True, help="Meter profile name (firmware-configs/meters) or YAML path."
)
@click.option("--tcp", "tcp_address", metavar="HOST:PORT", help="Modbus TCP host.")
@click.option("--serial", "serial_device", metavar="DEVICE", help="RS-485 serial device.")
@click.option("--baud", default=9600, show_default=True, type=click.IntRange(300, 921600))
@click.option("--parity", default="N", show_default=True, type=click.Choice(["N", "E", "O"]))
@click.option("--stopbits", default=1, show_default=True, type=click.Choice(["1", "2"]))
@click.option("--unit", "unit_id", required=True, type=click.IntRange(1, 247), help="Unit id.")
@click.option("--timeout", "timeout_s", default=1.0, show_default=True, help="Seconds per read.")
def read(
    profile: str,
    tcp_address: str | None,
    serial_device: str | None,
    baud: int,
    parity: str,
    stopbits: str,
    unit_id: int,
    timeout_s: float,
) -> None:
    """Read one meter once and print its decoded values as JSON (exit 1 if any read failed)."""
    import asyncio
    import json

    from edge.meters.profiles import load_profile
    from edge.meters.reader import read_meter
    from edge.meters.transport import Transport, serial_transport, tcp_transport

    if (tcp_address is None) == (serial_device is None):
        raise click.UsageError("give exactly one of --tcp HOST:PORT or --serial DEVICE")
    loaded = load_profile(profile)
    if tcp_address is not None:
        host, _, port = tcp_address.rpartition(":")
        if not host or not port.isdigit():
            raise click.BadParameter("expected HOST:PORT", param_hint="--tcp")

    async def once() -> dict[str, object]:
        transport: Transport  # pymodbus clients must be made inside the running loop
        if tcp_address is not None:
            transport = tcp_transport(host, int(port), timeout_s=timeout_s)
        else:
            assert serial_device is not None
            transport = serial_transport(
                serial_device,
                baud=baud,
                timeout_s=timeout_s,
                parity=parity,
                stopbits=int(stopbits),
            )
        try:
            return await read_meter(transport, loaded, unit_id)
        finally:
            transport.close()

    result = asyncio.run(once())
    click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    if result["errors"]:
        raise SystemExit(1)


@edge.group()
def lock() -> None:
    """A door's BLE lock."""


DOOR = click.option("--door", "door_id", required=True, help="The door whose lock is installed.")
CLOUD = click.option(
    "--cloud",
    "cloud_url",
    default=None,
    help="Record the key's fingerprint on the cloud's door (API token in ANJU_API_TOKEN).",
)


@lock.command()
@GATEWAY_CONFIG
@DOOR
@click.option("--replace", is_flag=True, help="Re-key: replace the door's existing lock key.")
@CLOUD
def provision(config_path: Path, door_id: str, replace: bool, cloud_url: str | None) -> None:
    """Write a new 128-bit key for a door's lock at its `ble.key_file` (mode 0600).

    Put the same key into the lock over its installer channel; the command prints the key's
    fingerprint, never the key, and with --cloud records it on the cloud's door record."""
    from edge.door.ble.provision import fingerprint, provision_key

    gateway_id, key_file, token = _lock_door(config_path, door_id, cloud_url)
    key = provision_key(key_file, replace=replace)
    click.echo(f"lock key for door {door_id} written to {key_file} (mode 0600)")
    click.echo(f"fingerprint {fingerprint(key)}: provision the lock with this key")
    if cloud_url is not None:
        _register(cloud_url, token, gateway_id, door_id, fingerprint(key))


@lock.command()
@GATEWAY_CONFIG
@DOOR
@CLOUD
def register(config_path: Path, door_id: str, cloud_url: str | None) -> None:
    """Record the fingerprint of a door's existing lock key on the cloud's door record."""
    from edge.door.ble.driver import load_lock_key
    from edge.door.ble.provision import fingerprint
    from protocols.errors import ConfigError

    if cloud_url is None:
        raise ConfigError("register needs --cloud URL")
    gateway_id, key_file, token = _lock_door(config_path, door_id, cloud_url)
    _register(cloud_url, token, gateway_id, door_id, fingerprint(load_lock_key(key_file)))


def _lock_door(config_path: Path, door_id: str, cloud_url: str | None) -> tuple[str, Path, str]:
    """(gateway id, the door's key file, the API token) after checking what the command needs."""
    import os

    from edge.config import load_config
    from protocols.errors import ConfigError

    config = load_config(config_path)
    door = next((d for d in config.doors if d.id == door_id), None)
    if door is None or door.ble is None:
        raise ConfigError(f"{config_path}: no door {door_id!r} with a `ble:` lock")
    token = os.environ.get("ANJU_API_TOKEN", "")
    if cloud_url is not None and not token:
        raise ConfigError("--cloud needs an API token in ANJU_API_TOKEN (a door manager's)")
    return config.gateway_id, door.ble.key_file, token


def _register(cloud_url: str, token: str, gateway_id: str, door_id: str, print_: str) -> None:
    from edge.door.ble.provision import register_fingerprint

    record = register_fingerprint(cloud_url, token, gateway_id, door_id, print_)
    click.echo(f"fingerprint {print_} recorded on the cloud's door #{record}")
