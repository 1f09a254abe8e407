"""The link over TLS (mqtts://): a private Mosquitto with a certificate from a CA made here.

A gateway and the cloud that trust that CA deliver every reading; a gateway that does not
(the system's trust store) is refused by its own certificate check and sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.uplink.client import Uplink
from tests.e2e.link_harness import Link, assert_same, wait_until
from tests.pki import Pki, make_pki
from tests.private_mosquitto import private_mosquitto

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def tls_broker(tmp_path: Path) -> AsyncIterator[tuple[str, Pki]]:
    pki = make_pki(tmp_path)
    async with private_mosquitto(tmp_path, tls=(pki.cert_file, pki.key_file)) as broker:
        yield broker.url, pki


async def test_readings_cross_a_tls_broker(
    tls_broker: tuple[str, Pki], database_url: str, tmp_path: Path
) -> None:
    url, pki = tls_broker
    assert url.startswith("mqtts://")
    async with Link(url, database_url, tmp_path, ca_file=pki.ca_file) as link:
        link.open_outbox()
        produced = link.produce(0, 600)
        async with link.ingest(), link.uplink():
            await wait_until(link.drained, 30, "the outbox to drain over TLS")
        assert_same(produced, link.stored())


async def test_a_gateway_that_does_not_trust_the_broker_sends_nothing(
    tls_broker: tuple[str, Pki],
    database_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, pki = tls_broker
    async with Link(url, database_url, tmp_path, ca_file=pki.ca_file) as link:
        outbox = link.open_outbox()
        # the gateway alone lacks the CA: it checks the broker against the system's trust store
        mqtt = link.config.mqtt.model_copy(update={"ca_file": None})
        config = link.config.model_copy(update={"mqtt": mqtt})
        link.produce(0, 10)
        retried = asyncio.Event()

        async def backoff(_delay: float) -> None:
            retried.set()
            await asyncio.Event().wait()  # hold the uplink here: one attempt is the test

        uplink = Uplink(config, outbox, now=lambda: datetime.now(UTC), sleep=backoff)
        with caplog.at_level(logging.WARNING, logger="edge.uplink.client"):
            task = asyncio.create_task(uplink.run(), name="untrusting-uplink")
            try:
                await asyncio.wait_for(retried.wait(), 20)  # the failed TLS connect
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        assert not uplink.connected.is_set()
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
        assert outbox.stats().pending == 10
        assert link.stored() == []
