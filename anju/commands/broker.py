from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=18830, show_default=True, help="TCP port (1883 is Mosquitto's).")
@click.option(
    "--database-url",
    default=None,
    help="Check logins and topics against this cloud registry (gateways and service"
    " accounts); without it anyone may connect and touch anything.",
)
def broker(host: str, port: int, database_url: str | None) -> None:
    """Run the embedded MQTT broker (amqtt) for demos and development."""
    from anju.broker import serve_broker
    from anju.runner import run_until_signal, setup_logging

    setup_logging()
    run_until_signal(serve_broker(host, port, database_url))
