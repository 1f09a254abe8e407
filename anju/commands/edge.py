from __future__ import annotations

from pathlib import Path

import click


@click.group()
def edge() -> None:
    """The building gateway."""


@edge.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The gateway's YAML file (see firmware-configs/gateways/).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def run(config_path: Path, verbose: bool) -> None:
    """Run the gateway: meter pollers, uplink and services from CONFIG."""
    from anju.runner import run_until_signal, setup_logging
    from edge.config import load_config
    from edge.gateway import run_gateway

    config = load_config(config_path)
    setup_logging(verbose)
    run_until_signal(run_gateway(config))
