"""Ingest and command counters, exposed through prometheus_client.

The counters are plain fields the worker and the dispatcher bump (tests read them); a collector
hands them to prometheus_client at scrape time under their long-standing names. Distributions
are prometheus_client histograms: how late a message is stored after its gateway sent it, and
how many messages one transaction takes. Each worker has a registry of its own, so several can
run in one process (the tests do).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
PREFIX = "anju_ingest"
# Seconds from a message's `ts` to its commit: live traffic lands under a second; a gateway
# back from a day offline sends its backlog hours late.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)
# Messages per transaction; the batch limit (ANJU_INGEST_BATCH_MESSAGES) is 20 by default.
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


@dataclass
class IngestMetrics:
    received: int = 0  # MQTT messages taken from the broker
    stored: int = 0  # records (readings + events) newly written
    duplicates: int = 0  # records already stored (resends, duplicate deliveries)
    acks: int = 0
    batches: int = 0
    db_retries: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # by reason
    commands_sent: int = 0  # signed commands published on down/cmd
    command_results: int = 0  # up/ack results recorded
    commands_refused: Counter[str] = field(default_factory=Counter)  # by the gateway, by reason
    lag_seconds: float = 0.0  # commit time - send time of the newest message in the last batch
    restarts: int = 0  # the worker failed and started again
    down: bool = False  # failed, and not subscribed again yet
    registry: CollectorRegistry = field(init=False, repr=False, compare=False)
    lag: Histogram = field(init=False, repr=False, compare=False)
    batch_size: Histogram = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Fields(self))
        self.lag = Histogram(
            f"{PREFIX}_store_lag_seconds",
            "Send-to-commit delay of each stored telemetry or events message.",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            f"{PREFIX}_batch_messages",
            "Messages stored in one database transaction.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> str:
        """The Prometheus text exposition (format 0.0.4) of every metric."""
        return generate_latest(self.registry).decode()


class _Fields:
    """The dataclass's fields as Prometheus counters and gauges, read at scrape time."""

    def __init__(self, metrics: IngestMetrics) -> None:
        self._m = metrics

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        m = self._m
        yield _counter("received", "MQTT messages received.", m.received)
        yield _counter("stored", "Records newly stored.", m.stored)
        yield _counter("duplicates", "Records already stored.", m.duplicates)
        yield _by_reason("rejected", "Messages quarantined, by reason.", m.rejected)
        yield _counter("acks", "Acknowledgements published.", m.acks)
        yield _counter("batches", "Database transactions.", m.batches)
        yield _counter("db_retries", "Transactions retried.", m.db_retries)
        yield _counter("commands_sent", "Commands published.", m.commands_sent)
        yield _counter("command_results", "Command results recorded.", m.command_results)
        yield _by_reason(
            "commands_refused",
            "Commands gateways refused (unsigned, bad_signature, expired, replayed, ...).",
            m.commands_refused,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_lag_seconds", "Send-to-commit delay of the last batch.", m.lag_seconds
        )
        yield _counter("restarts", "Worker failures followed by a restart.", m.restarts)
        yield GaugeMetricFamily(
            f"{PREFIX}_down", "1 while the worker is down after a failure.", float(m.down)
        )


def _counter(name: str, help_: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", help_, value=value)


def _by_reason(name: str, help_: str, counts: Counter[str]) -> CounterMetricFamily:
    family = CounterMetricFamily(f"{PREFIX}_{name}", help_, labels=["reason"])
    for reason, n in sorted(counts.items()):
        family.add_metric([reason], n)
    return family
