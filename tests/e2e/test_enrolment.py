"""A box enrolled from nothing: staff issue a token with the CLI, the installer runs
`anju edge enroll` against the cloud over real HTTP, and the gateway it configured logs in to
a broker that checks the registry (amqtt asks at each CONNECT; Mosquitto reads the exported
files) and publishes its state. The token does not work twice."""

from __future__ import annotations

import asyncio
import contextlib
import re
import stat
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
import uvicorn
from click.testing import CliRunner

from anju.broker import embedded_broker
from anju.cli import cli
from cloud.app import create_app
from cloud.broker_accounts import register_service
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker
from edge.config import load_config
from edge.gateway import run_gateway
from protocols.mqtt import messages as msg
from protocols.mqtt.topics import Kind, topic
from tests.cloud.conftest import add_portfolio
from tests.cloud.world import COMMAND_KEY
from tests.conftest import free_port
from tests.e2e.link_harness import as_async, mqtt_client, stop, wait_until
from tests.e2e.test_broker_auth import export
from tests.private_mosquitto import private_mosquitto

pytestmark = pytest.mark.timeout(90)
PROBE, PROBE_SECRET = "probe-service", "secret-of-the-probe-0123"


@contextlib.asynccontextmanager
async def cloud_server(settings: Settings) -> AsyncIterator[str]:
    """The cloud app served over HTTP on loopback inside this loop; yields its URL."""
    port = free_port()
    app = create_app(settings, command_key=COMMAND_KEY)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve(), name="cloud-http")
    try:
        await wait_until(as_async(lambda: server.started), 20, "the cloud to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


@contextlib.asynccontextmanager
async def registry_broker(
    kind: str, database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[str, Literal["3.1.1", "5"], Callable[[], None]]]:
    """(gateways' URL, protocol, a reload function) of a broker that checks the registry."""
    if kind == "amqtt":
        port = free_port()
        async with embedded_broker("127.0.0.1", port, database_url=database_url):
            yield f"mqtt://127.0.0.1:{port}", "3.1.1", lambda: None
        return
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    export(database_url, passwd, acl)
    async with private_mosquitto(tmp_path, password_file=passwd, acl_file=acl) as broker:

        def reload() -> None:  # what the cloud's broker-auth timer does
            export(database_url, passwd, acl)
            broker.reload()

        yield broker.url, "5", reload


@pytest.mark.parametrize("broker_kind", ["amqtt", "mosquitto"])
async def test_enrolled_box_connects_and_the_token_is_spent(
    broker_kind: str, database_url: str, tmp_path: Path, usual_umask: None
) -> None:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            prop, _, _ = add_portfolio(session, f"Org {uuid.uuid4().hex[:6]}")
            property_id = prop.id
            register_service(session, PROBE, PROBE_SECRET, datetime.now(UTC))
    finally:
        engine.dispose()
    env = {"ANJU_ENV": "development", "ANJU_DATABASE_URL": database_url}
    runner = CliRunner()
    async with registry_broker(broker_kind, database_url, tmp_path) as (url, protocol, reload):
        settings = Settings(
            env="development",
            database_url=database_url,
            mqtt_url=url,
            mqtt_protocol=protocol,
            ingest_in_process=False,
            data_dir=tmp_path / "cloud",
        )
        async with cloud_server(settings) as cloud_url:
            issued = runner.invoke(
                cli,
                ["cloud", "gateway", "enroll-token", "--property", str(property_id),
                 "--cloud-url", cloud_url, "--qr", str(tmp_path / "enrol.png")],
                env=env,
            )  # fmt: skip
            assert issued.exit_code == 0, issued.output
            assert (tmp_path / "enrol.png").read_bytes().startswith(b"\x89PNG")
            token = re.search(r"--token (\S+)", issued.output)
            assert token is not None
            box = tmp_path / "box" / "etc"
            config_file = box / "gateway.yaml"
            store = str(tmp_path / "box" / "gw.db")
            enrol = ["edge", "enroll", "--token", token[1], "--cloud", cloud_url,
                     "--config", str(config_file), "--store", store]  # fmt: skip
            enrolled = await asyncio.to_thread(runner.invoke, cli, enrol)
            assert enrolled.exit_code == 0, enrolled.output
            assert stat.S_IMODE(box.stat().st_mode) == 0o700
            assert stat.S_IMODE(config_file.stat().st_mode) == 0o600

            again = await asyncio.to_thread(runner.invoke, cli, [*enrol, "--force"])
            assert again.exit_code == 1
            assert "already used" in again.output, again.output

        reload()
        config = load_config(config_file)
        assert config.mqtt.protocol == protocol
        gateway = asyncio.create_task(run_gateway(config), name="enrolled-gateway")
        try:
            async with mqtt_client(
                url, f"{PROBE}:{uuid.uuid4().hex[:6]}", username=PROBE, password=PROBE_SECRET,
                protocol=protocol,
            ) as probe:  # fmt: skip
                await probe.subscribe(topic(config.gateway_id, Kind.STATE), qos=1)
                async with asyncio.timeout(30):
                    async for message in probe.messages:
                        assert isinstance(message.payload, bytes)
                        state = msg.decode(msg.State, message.payload)
                        if state.online:
                            break
        finally:
            await stop(gateway)
