"""`anju cloud gateway meters`: which meters the cloud binds to a gateway, and whether the
gateway's own config names the same ones."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("meters")
@click.argument("gateway_id")
@click.option("--bind", "bind", multiple=True, metavar="METER", help="Bind this meter to it.")
@click.option("--unbind", "unbind", multiple=True, metavar="METER", help="Unbind this meter.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The gateway's YAML: exit 1 unless its meters are exactly the ones bound to it.",
)
def gateway_meters(
    gateway_id: str, bind: tuple[str, ...], unbind: tuple[str, ...], config_path: Path | None
) -> None:
    """List the meters bound to GATEWAY_ID (only their readings from it count); bind or unbind
    meters of its property first. Readings it sends for a meter bound to another gateway are
    quarantined (foreign_meter)."""
    from cloud.config import load_settings
    from cloud.db import make_engine, make_sessionmaker
    from cloud.meter_bindings import bound_codes, rebind
    from edge.config import load_config
    from protocols.errors import AnjuError

    config = load_config(config_path) if config_path is not None else None
    if config is not None and config.gateway_id != gateway_id:
        raise AnjuError(f"{config_path} is the config of gateway {config.gateway_id!r}")
    engine = make_engine(load_settings().effective_database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            rebind(session, gateway_id, bind=bind, unbind=unbind)
            bound = bound_codes(session, gateway_id)
    finally:
        engine.dispose()
    for code in bound:
        click.echo(code)
    if config is None:
        return
    configured = {device.id for bus in config.buses for device in bus.devices}
    unbound, missing = sorted(configured - set(bound)), sorted(set(bound) - configured)
    problems = [
        f"{what}: {', '.join(codes)}"
        for what, codes in (
            ("in the config, not bound to it (their readings count for no meter)", unbound),
            ("bound to it, not in the config", missing),
        )
        if codes
    ]
    if problems:
        raise AnjuError(f"{config_path} differs from the meters bound to {gateway_id}: "
                        + "; ".join(problems))  # fmt: skip
    click.echo(f"{config_path}: its {len(configured)} meters are the ones bound to {gateway_id}")
