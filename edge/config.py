"""The gateway's one YAML file, validated with messages that name the bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.door.config import DoorConfig, door_relative_to
from edge.yamlfile import load_yaml
from protocols.errors import AnjuError, ConfigError
from protocols.fleet.gateway import MeterDevice, ModbusBus, check_parts
from protocols.mqtt.commands import load_public_key
from protocols.mqtt.health import MIN_HEALTH_INTERVAL_S
from protocols.mqtt.limits import AckTimeout, BatchKb, BatchRecords, WindowRecords
from protocols.mqtt.topics import check_gateway_id
from protocols.mqtt.url import BrokerAddress, parse_broker_url

__all__ = [
    "CommandSettings",
    "GatewayConfig",
    "MeterDevice",
    "ModbusBus",
    "MqttSettings",
    "StoreSettings",
    "UplinkSettings",
    "load_config",
]

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "anju"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class MqttSettings(_Strict):
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    protocol: Literal["3.1.1", "5"] = "5"
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    # A private CA for mqtts:// brokers; the system's trust store when unset.
    ca_file: Path | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            parse_broker_url(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def address(self) -> BrokerAddress:
        return parse_broker_url(self.url)


class StoreSettings(_Strict):
    path: Path = Path("data/gateway.db")
    # Disk budget of the outbox; past it the oldest records are dropped, counted and reported.
    outbox_budget_mb: Annotated[float, Field(gt=0)] = 512.0

    @property
    def outbox_budget_bytes(self) -> int:
        return int(self.outbox_budget_mb * 1024 * 1024)


class UplinkSettings(_Strict):
    """How the uplink batches, paces and resends (defaults suit a building's gateway)."""

    batch_records: BatchRecords = 500
    batch_kb: BatchKb = 128
    # Records sent but not yet acknowledged: bounds what a resend repeats.
    window_records: WindowRecords = 20_000
    # No ack progress for this long while records are in flight: resend from the last ack.
    ack_timeout_s: AckTimeout = 10.0
    # The broker keeps our session (and the acks queued for it) this long while we are away.
    session_expiry_s: Annotated[int, Field(ge=0)] = 7 * 24 * 3600
    state_interval_s: Annotated[float, Field(gt=0)] = 60.0
    # `up/health` this often (the cloud keeps no more than one per MIN_HEALTH_INTERVAL_S).
    health_interval_s: Annotated[float, Field(ge=MIN_HEALTH_INTERVAL_S, le=86400)] = 60.0


class CommandSettings(_Strict):
    """Commands from the cloud run only when signed by the cloud's Ed25519 key (`anju cloud keys
    init` prints it). A gateway without a key refuses every command, and says so at start."""

    public_key: str | None = None  # base64 of the raw 32-byte public key
    public_key_file: Path | None = None  # or a file holding it (base64 or PEM)
    # How far the gateway's clock may be from the cloud's when judging expiry.
    clock_skew_s: Annotated[float, Field(ge=0, le=600)] = 60.0

    @model_validator(mode="after")
    def _one_key(self) -> CommandSettings:
        if self.public_key is not None and self.public_key_file is not None:
            raise ValueError("set one of 'public_key' or 'public_key_file', not both")
        if self.public_key is not None:
            try:
                load_public_key(self.public_key)
            except ConfigError as exc:
                raise ValueError(f"public_key: {exc}") from None
        return self


class GatewayConfig(_Strict):
    gateway_id: str
    development: bool = False
    mqtt: MqttSettings = MqttSettings()
    store: StoreSettings = StoreSettings()
    link: UplinkSettings = UplinkSettings()
    buses: list[ModbusBus] = []
    # Door cameras with face recognition; each needs the verified models (`anju models fetch`).
    doors: list[DoorConfig] = []
    commands: CommandSettings = CommandSettings()

    @field_validator("gateway_id")
    @classmethod
    def _gateway_id(cls, value: str) -> str:
        try:
            return check_gateway_id(value)
        except AnjuError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _consistent(self) -> GatewayConfig:
        check_parts(self.buses, self.doors)
        password = self.mqtt.password
        if (
            password is not None
            and password.lower() in PLACEHOLDER_SECRETS
            and not self.development
        ):
            raise ValueError(
                "mqtt.password is a placeholder; set a real secret or 'development: true'"
            )
        return self


def load_config(path: Path) -> GatewayConfig:
    """Relative paths in the file (store, door galleries, folders, models, the command key) are
    relative to it."""
    config = load_yaml(GatewayConfig, path)
    here = path.parent
    if not config.store.path.is_absolute():
        store = config.store.model_copy(update={"path": (here / config.store.path).resolve()})
        config = config.model_copy(update={"store": store})
    doors = [door_relative_to(door, here) for door in config.doors]
    commands = config.commands
    if commands.public_key_file is not None and not commands.public_key_file.is_absolute():
        key_file = (here / commands.public_key_file).resolve()
        commands = commands.model_copy(update={"public_key_file": key_file})
    return config.model_copy(update={"doors": doors, "commands": commands})
