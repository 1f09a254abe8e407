"""What the cloud tells a gateway to hold: its settings (`down/config`, retained). The access
list its doors decide from (`down/access`) is `protocols.access`.

A config carries a `version` the cloud raises with every change; a gateway applies a message
only if it is newer than what it holds, so a retained config delivered again on reconnect, or a
late duplicate, changes nothing. The envelope's `seq` orders messages on the wire as in every
payload; what a gateway compares is `version`.

On the wire a config is signed as access lists are (`protocols.access.signing`: a signature
line, then the canonical JSON body) with the cloud's command key, under its own domain prefix
`anju-config-v1\n`, so no command's or list's signature is ever valid for a config.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, ValidationError, model_validator

from protocols.access.signing import AccessRefusedError, Refusal, encode_signed, verify_signed
from protocols.fleet.gateway import MAX_BUSES, MAX_DOORS, DoorConfig, ModbusBus, check_parts
from protocols.mqtt.bounds import Name, Seq
from protocols.mqtt.limits import AckTimeout, BatchKb, BatchRecords, WindowRecords
from protocols.mqtt.messages import _Envelope, _Model

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from protocols.ed25519 import PublicKey

Version = Seq  # a 64-bit column, as seqs
# A profile the cloud names is one the gateway ships (`firmware-configs/meters/<name>.yaml`),
# never a path: a remote config cannot make the gateway read a file of its choosing.
PROFILE_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
DOMAIN = b"anju-config-v1\n"
MAX_CONFIG_BYTES = 64 * 1024


# ---- down/config ----------------------------------------------------------------------------


class UplinkLimits(_Model):
    """How the uplink batches, paces and resends: the gateway file's `link:` keys, within its
    bounds (and an upper bound where the file has none: a remote value is checked harder)."""

    batch_records: BatchRecords | None = None
    batch_kb: BatchKb | None = None
    window_records: Annotated[WindowRecords, Field(le=1_000_000)] | None = None
    ack_timeout_s: Annotated[AckTimeout, Field(le=3600)] | None = None


class Config(_Envelope):
    """Settings the cloud may change remotely; anything left out keeps the gateway's own value.
    `buses` and `doors`, when given, replace the file's lists whole (same schema as the file)."""

    version: Version
    buses: Annotated[list[ModbusBus], Field(max_length=MAX_BUSES)] | None = None
    doors: Annotated[list[DoorConfig], Field(max_length=MAX_DOORS)] | None = None
    # Poll interval per bus, by the bus's name in the gateway's file.
    poll_interval_s: dict[Name, Annotated[float, Field(gt=0, le=86_400)]] = Field(
        default_factory=dict, max_length=MAX_BUSES
    )
    state_interval_s: Annotated[float, Field(gt=0, le=3600)] | None = None
    link: UplinkLimits = UplinkLimits()

    @model_validator(mode="after")
    def _parts(self) -> Config:
        check_parts(self.buses or [], self.doors or [])
        for bus in self.buses or []:
            for device in bus.devices:
                if not re.fullmatch(PROFILE_NAME, device.profile):
                    raise ValueError(f"device {device.id!r}: profile must be a profile's name")
        if self.buses is not None:
            named = {bus.name for bus in self.buses}
            for name in self.poll_interval_s:
                if name not in named:
                    raise ValueError(f"poll_interval_s.{name}: no bus of that name")
        return self


def encode_config(config: Config, key: Ed25519PrivateKey) -> bytes:
    """The payload the cloud publishes (retained) on `down/config`."""
    return encode_signed(config, key, domain=DOMAIN, max_bytes=MAX_CONFIG_BYTES)


def first_error(exc: ValidationError) -> str:
    """`where: what` of a schema error, the form the gateway reports and the API answers."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def decode_config(payload: bytes, key: PublicKey | None, *, gateway_id: str) -> Config:
    """Signature first (a tampered address or version is a bad signature), then the schema
    and the address. Whether the version is newer is the holder's to check."""
    body = verify_signed(payload, key, domain=DOMAIN, max_bytes=MAX_CONFIG_BYTES)
    try:
        config = Config.model_validate_json(body)
    except ValidationError as exc:
        raise AccessRefusedError(Refusal.MALFORMED, first_error(exc)) from None
    if config.gateway_id != gateway_id:
        raise AccessRefusedError(
            Refusal.WRONG_GATEWAY, f"addressed to {config.gateway_id!r}, not {gateway_id!r}"
        )
    return config
