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
        # meter -> point name -> template: no key tuple per meter point (a gateway of 200
        # meters holds thousands of templates)
        self._templates: dict[str, dict[str, ReadingTemplate]] = {}

    def encode(self, snapshot: PollSnapshot) -> list[str]:
        templates = self._templates
        out: list[str] = []
        last_ts, ts = None, ""
        last_meter: str | None = None
        of_meter: dict[str, ReadingTemplate] = {}
        for meter, point, when, value, quality in snapshot.values:
            if when is not last_ts:  # the values of one read share their datetime
                last_ts, ts = when, json_ts(when)
            if meter is not last_meter:  # and those of one meter come together
                last_meter, of_meter = meter, templates.setdefault(meter, {})
            template = of_meter.get(point.name)
            if template is None:
                template = of_meter[point.name] = ReadingTemplate(meter, point.name, point.unit)
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
