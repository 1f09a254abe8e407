"""The broker's logins in the registry: one namespace for gateways and services, checked
passwords, and the grants each kind gets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cloud.broker_accounts import (
    AccountKind,
    all_accounts,
    authenticate,
    register_service,
)
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.store import register_gateway
from protocols.errors import AnjuError
from protocols.mqtt.acl import gateway_grants, service_grants

NOW = datetime(2026, 12, 5, tzinfo=UTC)
GW_SECRET, SVC_SECRET = "gateway-secret-0123456", "service-secret-0123456"


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    maker = make_sessionmaker(engine)
    with maker.begin() as session:
        register_gateway(session, "gw-1", credential=GW_SECRET)
        register_gateway(session, "gw-bare")
        register_service(session, "ingest", SVC_SECRET, NOW)
    yield maker
    engine.dispose()


def test_logins_are_checked_against_the_stored_hash(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        gateway = authenticate(session, "gw-1", GW_SECRET)
        service = authenticate(session, "ingest", SVC_SECRET)
        assert gateway is not None
        assert (gateway.kind, gateway.grants) == (AccountKind.GATEWAY, gateway_grants("gw-1"))
        assert service is not None
        assert (service.kind, service.grants) == (AccountKind.SERVICE, service_grants())
        assert authenticate(session, "gw-1", SVC_SECRET) is None
        assert authenticate(session, "ingest", GW_SECRET) is None
        assert authenticate(session, "gw-bare", "") is None
        assert authenticate(session, "gw-unknown", GW_SECRET) is None
        assert [a.username for a in all_accounts(session)] == ["gw-1", "gw-bare", "ingest"]


def test_gateways_and_services_share_one_namespace(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        with pytest.raises(AnjuError, match="gateway's id"):
            register_service(session, "gw-1", SVC_SECRET, NOW)
        with pytest.raises(AnjuError, match="service account's name"):
            register_gateway(session, "ingest", credential=GW_SECRET)


def test_a_service_password_is_long_and_its_name_is_a_plain_username(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        with pytest.raises(AnjuError, match="at least 16"):
            register_service(session, "sender", "short", NOW)
        with pytest.raises(AnjuError, match="letters, digits"):
            register_service(session, "a/b", SVC_SECRET, NOW)
        register_service(session, "ingest", "a-new-service-secret-01", NOW)  # a rotation
    with sessions() as session:
        assert authenticate(session, "ingest", SVC_SECRET) is None
        assert authenticate(session, "ingest", "a-new-service-secret-01") is not None
