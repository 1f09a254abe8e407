"""A standalone `anju cloud ingest --metrics-port` serves its counters to a Prometheus scrape."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from protocols.mqtt.topics import Kind, topic
from tests.conftest import free_port, mqtt_protocol
from tests.e2e.link_harness import Link, as_async, assert_same, mqtt_client, wait_until

pytestmark = pytest.mark.timeout(90)


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, parsed by prometheus_client: (name, labels) -> value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _sample(text: str, name: str, **labels: str) -> float:
    samples = _samples(text)
    key = (name, frozenset(labels.items()))
    assert key in samples, f"{name}{labels} not in\n{text}"
    return samples[key]


def _start_worker(link: Link, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ANJU_ENV": "development",
        "ANJU_DATABASE_URL": link.database_url,
        "ANJU_MQTT_URL": link.mqtt_url,
        "ANJU_MQTT_PROTOCOL": mqtt_protocol(link.mqtt_url),
        "ANJU_INGEST_SHARE_GROUP": link.share_group,
    }
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "anju", "cloud", "ingest", "--metrics-port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


async def test_standalone_ingest_serves_metrics(link: Link) -> None:
    port = free_port()
    log_path = link.tmp_path / "ingest.log"
    worker = _start_worker(link, port, log_path)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        async with httpx.AsyncClient(timeout=5) as http:

            async def answering() -> bool:
                try:
                    return (await http.get(url)).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(answering, 30, "the metrics endpoint", poll_s=0.2)
            before = (await http.get(url)).text
            assert _sample(before, "anju_ingest_stored_total") == 0

            link.open_outbox()
            produced = link.produce(0, 50)

            def subscribed() -> bool:
                return "subscribed to" in log_path.read_text(errors="replace")

            await wait_until(as_async(subscribed), 30, "the worker to subscribe")
            async with link.uplink():
                await wait_until(link.drained, 30, "the outbox to drain through the worker")
            async with mqtt_client(link.mqtt_url, f"test-{link.gateway_id}") as client:
                await client.publish(topic(link.gateway_id, Kind.TELEMETRY), b"{oops", qos=1)

            async def counted() -> bool:
                text = (await http.get(url)).text
                return 'anju_ingest_rejected_total{reason="malformed"}' in text

            await wait_until(counted, 20, "the malformed message to be counted")
            response = await http.get(url)
            assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
            text = response.text
            assert _sample(text, "anju_ingest_stored_total") == 50
            assert _sample(text, "anju_ingest_duplicates_total") == 0
            assert _sample(text, "anju_ingest_received_total") >= 2
            assert _sample(text, "anju_ingest_lag_seconds") >= 0
            assert _sample(text, "anju_ingest_rejected_total", reason="malformed") >= 1
            # every message stored or refused went through a batch, and each got a lag
            batches = _sample(text, "anju_ingest_batches_total")
            assert _sample(text, "anju_ingest_batch_messages_count") == batches
            received = _sample(text, "anju_ingest_received_total")
            assert _sample(text, "anju_ingest_batch_messages_sum") == received
            lags = _sample(text, "anju_ingest_store_lag_seconds_count")
            assert 1 <= lags <= received - 1  # the malformed message has no timestamp
            assert _sample(text, "anju_ingest_store_lag_seconds_bucket", le="+Inf") == lags
            # a loopback link stores within the minute
            assert _sample(text, "anju_ingest_store_lag_seconds_bucket", le="60.0") == lags
            assert (await http.get(f"http://127.0.0.1:{port}/other")).status_code == 404
            assert (await http.post(url)).status_code == 405
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)
    assert worker.returncode == 0, log_path.read_text(errors="replace")[-2000:]
    assert_same(produced, link.stored())
