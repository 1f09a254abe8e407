"""The bounds of the uplink's limits, for the gateway's file (edge/config.py) and for the cloud's
`down/config` (protocols/mqtt/downlink.py); apart from both, so the gateway's file is checked
without building the downlink's models."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

BatchRecords = Annotated[int, Field(ge=1, le=5000)]
BatchKb = Annotated[int, Field(ge=4, le=255)]  # a batch must fit one message (256 KiB)
WindowRecords = Annotated[int, Field(ge=1)]
AckTimeout = Annotated[float, Field(gt=0)]
