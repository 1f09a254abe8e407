from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("data/demo"),
    show_default=True,
    help="Where the demo keeps its files.",
)
@click.option("--broker-port", default=18830, show_default=True)
@click.option("--http-port", default=8000, show_default=True)
@click.option("--modbus-port", default=15020, show_default=True)
@click.option(
    "--check",
    is_flag=True,
    help="Run until one reading has gone end to end, print a summary, exit 0 or 1.",
)
@click.option(
    "--timeout",
    "timeout_s",
    default=60.0,
    show_default=True,
    help="Seconds --check waits for the first reading.",
)
def demo(
    data_dir: Path,
    broker_port: int,
    http_port: int,
    modbus_port: int,
    check: bool,
    timeout_s: float,
) -> None:
    """Run a whole simulated building on loopback: broker, cloud, meters and gateway."""
    import asyncio

    from anju.demo import DemoPorts, run_demo

    ports = DemoPorts(broker=broker_port, http=http_port, modbus=modbus_port)
    sys.exit(asyncio.run(run_demo(data_dir, ports, check=check, timeout_s=timeout_s)))
