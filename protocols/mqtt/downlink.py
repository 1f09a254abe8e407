"""What the cloud tells a gateway to hold: its settings (`down/config`, retained). The access
list its doors decide from (`down/access`) is `protocols.access`.

A config carries a `version` the cloud raises with every change; a gateway applies a message
only if it is newer than what it holds, so a retained config delivered again on reconnect, or a
late duplicate, changes nothing. The envelope's `seq` orders messages on the wire as in every
payload; what a gateway compares is `version`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from protocols.mqtt.bounds import Name, Seq
from protocols.mqtt.limits import AckTimeout, BatchKb, BatchRecords, WindowRecords
from protocols.mqtt.messages import _Envelope, _Model

Version = Seq  # a 64-bit column, as seqs
MAX_BUSES = 64


# ---- down/config ----------------------------------------------------------------------------


class UplinkLimits(_Model):
    """How the uplink batches, paces and resends: the gateway file's `link:` keys, within its
    bounds (and an upper bound where the file has none: a remote value is checked harder)."""

    batch_records: BatchRecords | None = None
    batch_kb: BatchKb | None = None
    window_records: Annotated[WindowRecords, Field(le=1_000_000)] | None = None
    ack_timeout_s: Annotated[AckTimeout, Field(le=3600)] | None = None


class Config(_Envelope):
    """Settings the cloud may change remotely; anything left out keeps the gateway's own value."""

    version: Version
    # Poll interval per bus, by the bus's name in the gateway's file.
    poll_interval_s: dict[Name, Annotated[float, Field(gt=0, le=86_400)]] = Field(
        default_factory=dict, max_length=MAX_BUSES
    )
    state_interval_s: Annotated[float, Field(gt=0, le=3600)] | None = None
    link: UplinkLimits = UplinkLimits()
