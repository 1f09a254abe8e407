"""The gateway's one YAML file, validated with messages that name the bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.yamlfile import load_yaml
from protocols.errors import AnjuError, ConfigError
from protocols.mqtt.topics import check_gateway_id
from protocols.mqtt.url import BrokerAddress, parse_broker_url

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "anju"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(_Strict):
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    protocol: Literal["3.1.1", "5"] = "5"
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30

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


class MeterDevice(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=64)]
    unit_id: Annotated[int, Field(ge=0, le=247)]
    profile: str


class ModbusBus(_Strict):
    name: str
    tcp: str | None = None
    serial: str | None = None
    baud: int = 9600
    poll_interval_s: Annotated[float, Field(gt=0)] = 60.0
    timeout_s: Annotated[float, Field(gt=0)] = 1.0
    devices: list[MeterDevice] = []

    @field_validator("tcp")
    @classmethod
    def _tcp(cls, value: str | None) -> str | None:
        if value is not None:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError("expected HOST:PORT")
        return value

    @property
    def tcp_address(self) -> tuple[str, int]:
        assert self.tcp is not None
        host, _, port = self.tcp.rpartition(":")
        return host, int(port)


class GatewayConfig(_Strict):
    gateway_id: str
    development: bool = False
    mqtt: MqttSettings = MqttSettings()
    store: StoreSettings = StoreSettings()
    buses: list[ModbusBus] = []

    @field_validator("gateway_id")
    @classmethod
    def _gateway_id(cls, value: str) -> str:
        try:
            return check_gateway_id(value)
        except AnjuError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _consistent(self) -> GatewayConfig:
        for bus in self.buses:
            if (bus.tcp is None) == (bus.serial is None):
                raise ValueError(f"bus {bus.name!r}: set exactly one of 'tcp' or 'serial'")
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
    config = load_yaml(GatewayConfig, path)
    if not config.store.path.is_absolute():
        store = StoreSettings(path=(path.parent / config.store.path).resolve())
        config = config.model_copy(update={"store": store})
    return config
