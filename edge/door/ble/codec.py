"""The seam between the driver and a lock's protocol.

The driver owns what every BLE lock needs (adapter queue, connection, retry budget, counters on
disk, events to the outbox); a codec owns the bytes. `AnjuCodec` speaks protocols/lock. A vendor
lock (TTLock, Nuki-style pairing) plugs in as another codec whose secrets come from its
pairing at installation, mapping its answers and events onto protocols.lock.messages so the
outbox and the cloud see one vocabulary (docs/locks.md).
"""

from __future__ import annotations

from typing import Protocol

from protocols.lock.gatt import COMMAND_UUID, NOTIFY_UUID
from protocols.lock.messages import (
    Answer,
    Command,
    Event,
    decode_notification,
    encode_command,
)


class LockCodec(Protocol):
    command_uuid: str
    notify_uuid: str

    def command(self, counter: int, command: Command) -> bytes:
        """The frame to write for `command`, numbered `counter`."""
        ...

    def notification(
        self, data: bytes, *, last_counter: int, reply_to: int | None
    ) -> tuple[int, Answer | Event]:
        """A notification authenticated and decoded, or a LockError."""
        ...


class AnjuCodec:
    command_uuid = COMMAND_UUID
    notify_uuid = NOTIFY_UUID

    def __init__(self, key: bytes) -> None:
        self._key = key

    def command(self, counter: int, command: Command) -> bytes:
        return encode_command(self._key, counter, command)

    def notification(
        self, data: bytes, *, last_counter: int, reply_to: int | None
    ) -> tuple[int, Answer | Event]:
        return decode_notification(self._key, data, last_counter=last_counter, reply_to=reply_to)
