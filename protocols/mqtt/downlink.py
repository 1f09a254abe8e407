"""What the cloud tells a gateway to hold: its settings (`down/config`, retained) and the access
list its doors decide from (`down/access`).

Both carry a `version` the cloud raises with every change; a gateway applies a message only if
it is newer than what it holds, so a retained config delivered again on reconnect, or a late
duplicate, changes nothing. The envelope's `seq` orders messages on the wire as in every
payload; what a gateway compares is `version`.

An access list names, per credential, the doors it opens and the window in which it does. Every
entry ends (`valid_until` is required): a gateway cut off from the cloud refuses a credential
whose lease has ended by the entry's own expiry, without waiting for a revocation it cannot
receive. A list is sent whole (`base_version` absent) or as a delta on exactly `base_version`;
`apply` is the one rule for both, pure, with the time of a decision passed in by the caller.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field, field_serializer, field_validator, model_validator

from protocols.mqtt.bounds import CLEAN, Name, Seq
from protocols.mqtt.limits import AckTimeout, BatchKb, BatchRecords, WindowRecords
from protocols.mqtt.messages import MessageError, _Envelope, _iso, _Model, _utc

Version = Seq  # a 64-bit column, as seqs
MAX_BUSES = 64
MAX_DOORS_PER_ENTRY = 32
# A full list for one building must fit one message (256 KiB): ~1,000 entries of ~200 bytes.
MAX_ENTRIES = 1000
MAX_REF_CHARS = 128


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


# ---- down/access ----------------------------------------------------------------------------


class CredentialKind(StrEnum):
    CARD = "card"  # ref: the card's UID, hex
    PIN = "pin"  # ref: the id of a PIN the lock derives or verifies; never the PIN itself
    FACE = "face"  # ref: the enrollment id in the door's gallery
    BLE_KEY = "ble_key"  # ref: the id of a key provisioned to the lock


class Credential(_Model):
    kind: CredentialKind
    ref: Annotated[str, Field(min_length=1, max_length=MAX_REF_CHARS, pattern=CLEAN)]


class AccessEntry(_Model):
    """One credential of one subject (a tenant, an occupant, staff) on some doors for a window."""

    id: Name
    subject: Name
    credential: Credential
    doors: Annotated[list[Name], Field(min_length=1, max_length=MAX_DOORS_PER_ENTRY)]
    valid_from: AwareDatetime
    valid_until: AwareDatetime

    _times_utc = field_validator("valid_from", "valid_until")(_utc)
    _times_iso = field_serializer("valid_from", "valid_until")(_iso)

    @model_validator(mode="after")
    def _window(self) -> AccessEntry:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if len(set(self.doors)) != len(self.doors):
            raise ValueError("doors are listed twice")
        return self

    def allows(self, door: str, at: datetime) -> bool:
        """Whether this entry opens `door` at `at` (from `valid_from`, until `valid_until`)."""
        return door in self.doors and self.valid_from <= at < self.valid_until


class AccessList(_Envelope):
    """A gateway's whole list (`base_version` None), or the changes from `base_version`:
    `entries` added or replaced by id, `removed` ids deleted."""

    version: Version
    base_version: Version | None = None
    entries: list[AccessEntry] = Field(default_factory=list, max_length=MAX_ENTRIES)
    removed: list[Name] = Field(default_factory=list, max_length=MAX_ENTRIES)

    @model_validator(mode="after")
    def _consistent(self) -> AccessList:
        ids = [e.id for e in self.entries]
        if len(set(ids)) != len(ids):
            raise ValueError("entry ids are listed twice")
        if self.base_version is None:
            if self.removed:
                raise ValueError("a full list removes nothing: it replaces the list")
            return self
        if self.base_version >= self.version:
            raise ValueError("base_version must be before version")
        if set(self.removed) & set(ids) or len(set(self.removed)) != len(self.removed):
            raise ValueError("an id is removed twice, or both removed and listed")
        return self

    @property
    def full(self) -> bool:
        return self.base_version is None

    def allows(self, door: str, kind: CredentialKind, ref: str, at: datetime) -> bool:
        return any(
            e.credential.kind is kind and e.credential.ref == ref and e.allows(door, at)
            for e in self.entries
        )


def apply(held: AccessList | None, update: AccessList) -> AccessList:
    """The full list after `update`; `held` is the full list the gateway has (None: none yet).

    An update not newer than `held` changes nothing. A delta on another version than `held`
    cannot be applied: `MessageError("stale")`, and the gateway asks for the whole list.
    """
    if held is not None and update.version <= held.version:
        return held
    if update.full:
        return update
    if held is None or held.version != update.base_version:
        have = "none" if held is None else held.version
        raise MessageError("stale", f"delta on {update.base_version}, held {have}")
    gone = set(update.removed) | {e.id for e in update.entries}
    kept = [e for e in held.entries if e.id not in gone]
    return update.model_copy(
        update={
            "base_version": None,
            "removed": [],
            "entries": list(itertools.chain(kept, update.entries)),
        }
    )
