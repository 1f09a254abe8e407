from __future__ import annotations

import click


@click.group()
def sim() -> None:
    """Simulated hardware that speaks the real protocols."""


@sim.command()
@click.option(
    "--profile",
    default="eastron-sdm120",
    show_default=True,
    help="Meter profile name (firmware-configs/meters) or YAML path.",
)
@click.option(
    "--count",
    default=1,
    show_default=True,
    type=click.IntRange(1, 247),
    help="Meters on the bus, unit ids 1..COUNT.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=15020, show_default=True, help="Modbus TCP port.")
def meters(profile: str, count: int, host: str, port: int) -> None:
    """Serve COUNT simulated meters over Modbus TCP."""
    from anju.runner import run_until_signal, setup_logging
    from anju.sim.meters import serve_meters
    from edge.meters.profiles import load_profile

    loaded = load_profile(profile)
    setup_logging()
    click.echo(f"{count} x {loaded.model} on modbus-tcp://{host}:{port} (unit ids 1..{count})")
    run_until_signal(serve_meters(loaded, count, host, port))
