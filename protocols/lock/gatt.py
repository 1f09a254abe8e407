"""The lock's GATT layout: one primary service, a command characteristic the gateway writes
(with response) and a notify characteristic that carries answers and events."""

from __future__ import annotations

SERVICE_UUID = "6a4e0001-8f2c-4b8e-9a57-3c1d2e5f6a70"
COMMAND_UUID = "6a4e0002-8f2c-4b8e-9a57-3c1d2e5f6a70"  # write with response
NOTIFY_UUID = "6a4e0003-8f2c-4b8e-9a57-3c1d2e5f6a70"  # notify
# Every frame fits one ATT write or notification at the default MTU of 23 (3 bytes of ATT
# header), so no lock needs an MTU exchange or long writes.
DEFAULT_ATT_MTU = 23
MAX_FRAME = DEFAULT_ATT_MTU - 3
