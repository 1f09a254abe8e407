"""Ingest and command counters, in the Prometheus text exposition format."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


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

    def render(self, prefix: str = "anju_ingest") -> str:
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {prefix}_{name} {help_}")
            lines.append(f"# TYPE {prefix}_{name} {kind}")
            lines.extend(f"{prefix}_{name}{labels} {value:g}" for labels, value in samples)

        metric("received_total", "counter", "MQTT messages received.", [("", self.received)])
        metric("stored_total", "counter", "Records newly stored.", [("", self.stored)])
        metric("duplicates_total", "counter", "Records already stored.", [("", self.duplicates)])
        metric(
            "rejected_total",
            "counter",
            "Messages quarantined, by reason.",
            [(f'{{reason="{r}"}}', n) for r, n in sorted(self.rejected.items())] or [("", 0)],
        )
        metric("acks_total", "counter", "Acknowledgements published.", [("", self.acks)])
        metric("batches_total", "counter", "Database transactions.", [("", self.batches)])
        metric("db_retries_total", "counter", "Transactions retried.", [("", self.db_retries)])
        metric("commands_sent_total", "counter", "Commands published.", [("", self.commands_sent)])
        metric(
            "command_results_total",
            "counter",
            "Command results recorded.",
            [("", self.command_results)],
        )
        metric(
            "commands_refused_total",
            "counter",
            "Commands gateways refused (unsigned, bad_signature, expired, replayed, ...).",
            [(f'{{reason="{r}"}}', n) for r, n in sorted(self.commands_refused.items())]
            or [("", 0)],
        )
        metric(
            "lag_seconds",
            "gauge",
            "Send-to-commit delay of the last batch.",
            [("", self.lag_seconds)],
        )
        metric(
            "restarts_total",
            "counter",
            "Worker failures followed by a restart.",
            [("", self.restarts)],
        )
        metric("down", "gauge", "1 while the worker is down after a failure.", [("", self.down)])
        return "\n".join(lines) + "\n"
