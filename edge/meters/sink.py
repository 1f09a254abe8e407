"""Where a bus's poll snapshots go: encoded as reading records and committed to the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from edge.meters.snapshot import PollSnapshot
from edge.store.outbox import Outbox
from protocols.mqtt.messages import ReadingTemplate, RecordKind, json_ts


class OutboxSink:
    """Encodes each value with its point's `ReadingTemplate` (made once per meter point) and
    stores a snapshot in one outbox transaction, then tells the uplink (`on_stored`)."""

    def __init__(self, outbox: Outbox, *, on_stored: Callable[[], None] = lambda: None) -> None:
        self._outbox = outbox
        self._on_stored = on_stored
        self._templates: dict[tuple[str, str], ReadingTemplate] = {}

    def encode(self, snapshot: PollSnapshot) -> list[str]:
        templates = self._templates
        out: list[str] = []
        last_ts, ts = None, ""
        for meter, point, when, value, quality in snapshot.values:
            if when is not last_ts:  # the values of one read share their datetime
                last_ts, ts = when, json_ts(when)
            template = templates.get((meter, point.name))
            if template is None:
                template = templates[meter, point.name] = ReadingTemplate(
                    meter, point.name, point.unit
                )
            if isinstance(value, str):
                out.append(template.text(value, ts, quality))
            else:
                out.append(template.number(value, ts, quality))
        return out

    async def store(self, snapshot: PollSnapshot) -> int:
        """Commit the snapshot's values; returns how many readings went into the outbox."""
        records = self.encode(snapshot)
        if records:
            await asyncio.to_thread(self._outbox.append_json, RecordKind.READING, records)
            self._on_stored()
        return len(records)
