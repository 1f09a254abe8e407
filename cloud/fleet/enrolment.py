"""Enrolment tokens: issued by staff for one gateway-to-be, consumed once by the gateway.

A token is 256 random bits shown once; the database keeps its SHA-256. Consuming it is one
conditional UPDATE (`used_at IS NULL`), so two boxes racing with the same token cannot both
win. The winner is registered as a gateway with a new MQTT password (the same registry the
brokers read: cloud.broker_accounts), and receives everything it needs to connect.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.config import Settings
from cloud.db import as_utc
from cloud.ingest.store import register_gateway
from cloud.models import Gateway, GatewayEnrolment, ServiceAccount
from cloud.security.broker_credentials import new_secret
from cloud.security.tokens import digest
from protocols.errors import AnjuError, ConfigError
from protocols.fleet.enrolment import TOKEN_BYTES, EnrolGrant, MqttLogin
from protocols.mqtt.commands import public_key_text
from protocols.mqtt.topics import check_gateway_id
from protocols.mqtt.url import parse_broker_url

DEFAULT_TTL = timedelta(hours=24)
MIN_TTL = timedelta(minutes=5)
MAX_TTL = timedelta(days=7)  # a token lying around for weeks is a login lying around


class TokenRefusedError(AnjuError):
    """A token that is unknown, expired or already used; the message says which."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    gateway_id: str
    property_id: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class BrokerView:
    """What a gateway needs to know about the broker and the command key."""

    mqtt_url: str
    mqtt_protocol: str
    ca_pem: str | None
    command_public_key: str


def broker_view(settings: Settings, key: Ed25519PrivateKey) -> BrokerView:
    """The broker as gateways reach it: `ANJU_GATEWAY_MQTT_URL` (else the cloud's own URL),
    never with the cloud's own login in it."""
    address = parse_broker_url(settings.gateway_mqtt_url or settings.mqtt_url)
    host = f"[{address.host}]" if ":" in address.host else address.host
    url = f"{'mqtts' if address.tls else 'mqtt'}://{host}:{address.port}"
    ca_file = settings.mqtt_ca_file
    try:
        ca_pem = ca_file.read_text() if ca_file is not None else None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"ANJU_MQTT_CA_FILE {ca_file}: {exc}") from None
    return BrokerView(url, settings.mqtt_protocol, ca_pem, public_key_text(key.public_key()))


def new_gateway_id() -> str:
    return f"gw-{secrets.token_hex(5)}"


def issue_token(
    session: Session,
    *,
    property_id: int,
    now: datetime,
    created_by: str,
    gateway_id: str | None = None,
    name: str = "",
    building: str = "",
    ttl: timedelta = DEFAULT_TTL,
) -> IssuedToken:
    """A token for a new gateway (or for re-enrolling one of the same property, which gives it
    a new password); the caller checks the property is the issuer's, and commits."""
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise AnjuError(f"a token lives between {MIN_TTL} and {MAX_TTL}, not {ttl}")
    gid = check_gateway_id(gateway_id) if gateway_id else new_gateway_id()
    existing = session.get(Gateway, gid)
    if existing is not None and existing.property_id != property_id:
        raise AnjuError(f"gateway id {gid!r} is taken")
    if session.get(ServiceAccount, gid) is not None:
        raise AnjuError(f"{gid!r} is a service account's name; choose another gateway id")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires = now + ttl
    session.add(
        GatewayEnrolment(
            token_hash=digest(token),
            gateway_id=gid,
            property_id=property_id,
            name=name,
            building=building,
            created_by=created_by,
            created_at=now,
            expires_at=expires,
        )
    )
    return IssuedToken(token, gid, property_id, expires)


def consume(session: Session, token: str, now: datetime) -> GatewayEnrolment:
    """Mark the token used, or refuse it saying why; the caller commits."""
    row = session.scalar(
        select(GatewayEnrolment).where(GatewayEnrolment.token_hash == digest(token))
    )
    if row is None:
        raise TokenRefusedError("the enrolment token is not known; ask for a new one")
    if row.used_at is not None:
        raise TokenRefusedError(
            f"the enrolment token was already used at {as_utc(row.used_at).isoformat()};"
            " ask for a new one"
        )
    if as_utc(row.expires_at) <= now:
        raise TokenRefusedError(
            f"the enrolment token expired at {as_utc(row.expires_at).isoformat()};"
            " ask for a new one"
        )
    won = session.execute(
        update(GatewayEnrolment)
        .where(GatewayEnrolment.id == row.id, GatewayEnrolment.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        raise TokenRefusedError("the enrolment token was just used by another request")
    return row


def first_config(gateway_id: str, login: MqttLogin, public_key: str) -> dict[str, Any]:
    """The gateway's configuration as the cloud first gives it: who it is, where the broker
    is, the command key. Buses and doors come later by remote configuration or by hand."""
    return {
        "gateway_id": gateway_id,
        "mqtt": login.model_dump(),
        "commands": {"public_key": public_key},
    }


def enrol(session: Session, token: str, now: datetime, broker: BrokerView) -> EnrolGrant:
    """Consume the token and register its gateway with a fresh MQTT password."""
    row = consume(session, token, now)
    password = new_secret()
    register_gateway(
        session,
        row.gateway_id,
        row.name,
        building=row.building,
        property_id=row.property_id,
        credential=password,
    )
    login = MqttLogin(
        url=broker.mqtt_url,
        username=row.gateway_id,
        password=password,
        protocol=broker.mqtt_protocol,
    )
    return EnrolGrant(
        gateway_id=row.gateway_id,
        mqtt=login,
        ca_pem=broker.ca_pem,
        command_public_key=broker.command_public_key,
        config=first_config(row.gateway_id, login, broker.command_public_key),
    )
