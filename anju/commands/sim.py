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
@click.option(
    "--port",
    "ports",
    multiple=True,
    type=int,
    default=[15020],
    show_default=True,
    help="Modbus TCP port. Repeat to serve several hosts (COUNT meters each) from one process.",
)
@click.option(
    "--serial",
    metavar="DEVICE|pty",
    help="Serve Modbus RTU on a serial device instead of TCP; 'pty' makes a virtual line and "
    "prints the device to connect to.",
)
@click.option("--baud", default=9600, show_default=True, type=click.IntRange(300, 921600))
@click.option(
    "--line-timing", is_flag=True, help="With --serial pty: pace the line at --baud like RS-485."
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="UNIT:KIND[:ARG]",
    help="Inject a fault: no-answer, exception[:CODE], corrupt, slow[:SECONDS], rollover, "
    "swap[:AFTER_SECONDS], max-span[:REGISTERS] (longer reads refused). Repeatable.",
)
def meters(
    profile: str,
    count: int,
    host: str,
    ports: tuple[int, ...],
    serial: str | None,
    baud: int,
    line_timing: bool,
    faults: tuple[str, ...],
) -> None:
    """Serve COUNT simulated meters over Modbus TCP or RTU."""
    from anju.runner import run_until_signal, setup_logging
    from anju.sim.meters import FaultSpec, serve_meters
    from edge.meters.profiles import load_profile

    loaded = load_profile(profile)
    specs = tuple(FaultSpec.parse(f) for f in faults)
    setup_logging()

    def ready(where: str) -> None:
        click.echo(f"{count} x {loaded.model} on {where} (unit ids 1..{count})", nl=True)

    run_until_signal(
        serve_meters(
            loaded,
            count,
            host=host,
            port=ports,
            serial=serial,
            baud=baud,
            line_timing=line_timing,
            faults=specs,
            ready=ready,
        )
    )
