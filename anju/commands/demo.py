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
@click.option("--broker-port", default=18830, show_default=True, help="Embedded broker port.")
@click.option("--http-port", default=8000, show_default=True, help="Cloud API port.")
@click.option("--modbus-port", default=15020, show_default=True, help="Simulated meters' port.")
@click.option(
    "--mqtt-url",
    default=None,
    help="Use this broker (e.g. mqtt://127.0.0.1:1883, Mosquitto) instead of the embedded one.",
)
@click.option(
    "--mqtt-protocol",
    type=click.Choice(["3.1.1", "5"]),
    default="5",
    show_default=True,
    help="MQTT version to speak with --mqtt-url.",
)
@click.option(
    "--database-url",
    default=None,
    help="Use this database (e.g. postgresql://user@host/db) instead of a SQLite file.",
)
@click.option(
    "--gateway-id",
    default="demo-gw-1",
    show_default=True,
    help="The demo gateway's id (unique per building on a shared broker).",
)
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
    mqtt_url: str | None,
    mqtt_protocol: str,
    database_url: str | None,
    gateway_id: str,
    check: bool,
    timeout_s: float,
) -> None:
    """Run a whole simulated building on loopback: broker, cloud, meters and gateway."""
    import asyncio

    from anju.demo import DemoPorts, DemoServers, run_demo

    ports = DemoPorts(broker=broker_port, http=http_port, modbus=modbus_port)
    servers = DemoServers(
        mqtt_url=mqtt_url,
        mqtt_protocol=mqtt_protocol,
        database_url=database_url,
        gateway_id=gateway_id,
    )
    sys.exit(asyncio.run(run_demo(data_dir, ports, servers, check=check, timeout_s=timeout_s)))
