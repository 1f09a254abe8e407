"""Cloud settings from `ANJU_*` environment variables, built by a factory, never at import."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.billing.bounds import MAX_BACK_MONTHS
from cloud.maintenance.notify import egress
from cloud.security.client_address import TrustedProxies, parse_networks
from protocols.errors import ConfigError

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "development-only"})
MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANJU_", extra="ignore", frozen=True)

    env: Literal["production", "development"] = "production"
    secret_key: str = "change-me"  # noqa: S105 - a placeholder refused outside development
    data_dir: Path = Path("data")
    database_url: str = ""
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_protocol: Literal["3.1.1", "5"] = "5"
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    # A private CA for an mqtts:// broker (PEM); the system's trust store when unset.
    mqtt_ca_file: Path | None = None
    # The broker as gateways reach it (handed to them at enrolment); default: mqtt_url.
    gateway_mqtt_url: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # The session cookie's Secure flag; unset: on in production, off in development (plain HTTP
    # on loopback). Production serves HTTPS only, behind the Ansible role's nginx.
    cookie_secure: bool | None = None
    # Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For names the
    # client; empty: the TCP peer is the client (cloud.security.client_address).
    trusted_proxies: str = ""
    ingest_in_process: bool = True
    # Field encryption: "kid:base64key,..." (first encrypts) and the blind-index key (base64).
    # Empty: <data_dir>/field-keys.json, or in development a fixed placeholder.
    # The operator's local time zone, the one calendar of the cloud: lease dates, due dates,
    # which month a reading bills in, and when the scheduled jobs run.
    timezone: str = "Asia/Shanghai"
    # Not a second calendar: accepted only when equal to ANJU_TIMEZONE (a deployment that set
    # it to something else is refused rather than silently billed on another calendar).
    jobs_timezone: str = ""
    cjk_font: str = ""  # a TTF with Chinese glyphs for contracts; default: Debian's
    field_keys: str = ""
    index_key: str = ""
    # How ingest workers subscribe: "shared" ($share/<group>/...) lets N workers split the load
    # (MQTT 5; Mosquitto also honours it for 3.1.1 clients); "plain" suits a single worker and
    # brokers without shared subscriptions (the embedded amqtt). "auto": shared iff MQTT 5.
    ingest_subscription: Literal["auto", "shared", "plain"] = "auto"
    ingest_share_group: str = "anju"
    # Seconds between MQTT pings: how fast a half-open connection (broker restarted) is noticed.
    mqtt_keepalive_s: int = 30
    # Messages drained from the broker into one database transaction.
    ingest_batch_messages: int = 20
    # The Ed25519 key commands to gateways are signed with (PEM, PKCS#8); default
    # <data_dir>/command-key.pem. `anju cloud keys init` creates it; development creates it
    # on first use.
    command_key_file: Path | None = None
    # How long a command stays valid when its sender names no lifetime.
    command_ttl_s: int = 300
    # Past months of rent one billing run bills for a lease; older ones wait as a hold for
    # review (a lease dated years back would otherwise be billed all at once).
    billing_max_back_months: int = Field(MAX_BACK_MONTHS, ge=0, le=120)
    # Alarm webhooks go to public https addresses only. Development and tests may allow http
    # and any address; private networks listed here (comma-separated) are allowed all the same.
    webhooks_insecure: bool = False
    webhook_networks: str = ""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai)") from None
        return value

    @field_validator("jobs_timezone")
    @classmethod
    def _one_calendar(cls, value: str, info: ValidationInfo) -> str:
        zone = info.data.get("timezone")
        if value and zone is not None and value != zone:
            raise ValueError(
                f"{value!r} differs from ANJU_TIMEZONE {zone!r}; billing and its jobs use"
                " ANJU_TIMEZONE alone: unset ANJU_JOBS_TIMEZONE"
            )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("webhook_networks")
    @classmethod
    def _webhook_networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @model_validator(mode="after")
    def _no_placeholders_in_production(self) -> Settings:
        if self.env != "production":
            return self
        if self.webhooks_insecure:
            raise ValueError("ANJU_WEBHOOKS_INSECURE is for development only")
        if self.secret_key.lower() in PLACEHOLDER_SECRETS:
            raise ValueError(
                f"ANJU_SECRET_KEY is a placeholder; set a real secret ({MIN_SECRET_LENGTH}+"
                " random characters) or run with ANJU_ENV=development"
            )
        if len(self.secret_key) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"ANJU_SECRET_KEY has {len(self.secret_key)} characters; production needs"
                f" {MIN_SECRET_LENGTH}+ random characters"
            )
        return self

    @property
    def ingest_shared(self) -> bool:
        if self.ingest_subscription == "auto":
            return self.mqtt_protocol == "5"
        return self.ingest_subscription == "shared"

    @property
    def webhook_policy(self) -> egress.EgressPolicy:
        return egress.EgressPolicy(
            http=self.webhooks_insecure,
            any_address=self.webhooks_insecure,
            networks=parse_networks(self.webhook_networks),
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def proxies(self) -> TrustedProxies:
        return TrustedProxies(parse_networks(self.trusted_proxies))

    @property
    def command_key_path(self) -> Path:
        return self.command_key_file or self.data_dir / "command-key.pem"

    @property
    def session_cookie_secure(self) -> bool:
        return self.env == "production" if self.cookie_secure is None else self.cookie_secure

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'anju.db'}"


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        key = f"ANJU_{where.upper()}" if where else "settings"
        raise ConfigError(f"{key}: {err['msg'].removeprefix('Value error, ')}") from None
