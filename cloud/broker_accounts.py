"""The broker's logins, read from the registry: gateways (username = gateway id) and services.

Both brokers are fed from here: the embedded one asks at every CONNECT (`authenticate`), Mosquitto
gets files (`cloud.mosquitto_files`). A gateway without a credential cannot log in at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.models import Gateway, ServiceAccount
from cloud.security.broker_credentials import MIN_SECRET_CHARS, hash_credential, verify_credential
from protocols.errors import AnjuError
from protocols.mqtt.acl import Grant, gateway_grants, service_grants
from protocols.mqtt.topics import TopicError, check_gateway_id


class AccountKind(Enum):
    GATEWAY = "gateway"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class BrokerAccount:
    username: str
    kind: AccountKind
    credential_hash: str
    grants: tuple[Grant, ...]


def _gateway(g: Gateway) -> BrokerAccount:
    return BrokerAccount(g.id, AccountKind.GATEWAY, g.credential_hash, gateway_grants(g.id))


def _service(s: ServiceAccount) -> BrokerAccount:
    return BrokerAccount(s.name, AccountKind.SERVICE, s.credential_hash, service_grants())


def find_account(session: Session, username: str) -> BrokerAccount | None:
    gateway = session.get(Gateway, username)
    service = session.get(ServiceAccount, username)
    if gateway is not None and service is not None:
        return None  # both kinds refuse the name on creation; never guess between them
    if gateway is not None:
        return _gateway(gateway)
    return _service(service) if service is not None else None


def authenticate(session: Session, username: str, password: str) -> BrokerAccount | None:
    """The account if `password` is its credential; None for unknown, no credential, wrong."""
    account = find_account(session, username)
    if account is None or not verify_credential(password, account.credential_hash):
        return None
    return account


def all_accounts(session: Session) -> list[BrokerAccount]:
    """Every login, gateways then services, each sorted by name (a stable export)."""
    gateways = session.scalars(select(Gateway).order_by(Gateway.id))
    services = session.scalars(select(ServiceAccount).order_by(ServiceAccount.name))
    return [*(_gateway(g) for g in gateways), *(_service(s) for s in services)]


def check_secret(secret: str) -> str:
    if len(secret) < MIN_SECRET_CHARS:
        raise AnjuError(f"an MQTT password must have at least {MIN_SECRET_CHARS} characters")
    return secret


def register_service(session: Session, name: str, secret: str, now: datetime) -> ServiceAccount:
    """Create a service account, or give an existing one a new credential."""
    try:
        check_gateway_id(name)  # the same alphabet: a username Mosquitto's files take as it is
    except TopicError:
        raise AnjuError(
            f"service account name {name!r} must be 1-64 letters, digits, '_', '.', '-'"
        ) from None
    if session.get(Gateway, name) is not None:
        raise AnjuError(f"{name!r} is a gateway's id; a service account needs another name")
    account = session.get(ServiceAccount, name)
    if account is None:
        account = ServiceAccount(name=name, credential_hash="", created_at=now)
        session.add(account)
    account.credential_hash = hash_credential(check_secret(secret))
    return account
