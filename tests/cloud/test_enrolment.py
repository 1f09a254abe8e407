"""Enrolment tokens through the API on a real database: issued by staff of the property, shown
once and stored hashed, traded once for a gateway's identity; wrong, expired and reused tokens
are refused with a line that says which."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cloud.broker_accounts import authenticate
from cloud.commands.keys import create_key
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker
from cloud.fleet.enrolment import TokenRefusedError, broker_view, consume, issue_token
from cloud.models import Gateway, GatewayEnrolment, Role
from edge.config import GatewayConfig
from protocols.fleet.enrolment import EnrolGrant
from protocols.mqtt.commands import public_key_text
from tests.cloud.conftest import NOW, Api, add_portfolio
from tests.cloud.world import COMMAND_KEY

ENROL = "/api/v1/gateways/enrol"
TOKENS = "/api/v1/gateways/enrolment-tokens"


async def issue(api: Api, role: Role = Role.MANAGER, **body: object) -> dict[str, object]:
    site = api.world.sites["P1"]
    r = await api.client.post(
        TOKENS, json={"property_id": site.property_id, **body}, headers=api.as_role(role)
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    out: dict[str, object] = r.json()
    return out


async def test_a_token_is_traded_once_for_a_working_identity(api: Api) -> None:
    issued = await issue(api, gateway_id="gw-new-1", name="Tower A gateway")
    token = str(issued["token"])
    assert issued["gateway_id"] == "gw-new-1"
    assert str(issued["command"]).startswith(f"anju edge enroll --token {token} --cloud ")
    assert str(issued["qr_svg"]).startswith("<svg")
    with api.sessions() as session:
        stored = session.scalars(select(GatewayEnrolment.token_hash)).all()
    assert len(stored) == 1
    assert token not in stored  # only its hash is kept

    r = await api.client.post(ENROL, json={"token": token})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    grant = EnrolGrant.model_validate(r.json())
    assert grant.gateway_id == grant.mqtt.username == "gw-new-1"
    assert grant.command_public_key == public_key_text(COMMAND_KEY.public_key())
    config = GatewayConfig.model_validate(grant.config)  # the gateway's own schema takes it
    assert config.mqtt.password == grant.mqtt.password
    with api.sessions() as session:
        gateway = session.get_one(Gateway, "gw-new-1")
        assert gateway.property_id == api.world.sites["P1"].property_id
        assert gateway.name == "Tower A gateway"
        # the broker lets it in with that password, and nobody with another
        assert authenticate(session, "gw-new-1", grant.mqtt.password) is not None
        assert authenticate(session, "gw-new-1", grant.mqtt.password + "x") is None

    again = await api.client.post(ENROL, json={"token": token})
    assert again.status_code == 403
    assert "already used" in again.json()["detail"]


async def test_wrong_expired_and_malformed_tokens_are_refused(api: Api) -> None:
    unknown = await api.client.post(ENROL, json={"token": "A" * 43})
    assert unknown.status_code == 403
    assert "not known" in unknown.json()["detail"]

    issued = await issue(api, ttl_s=600)
    api.clock.now += timedelta(seconds=601)
    expired = await api.client.post(ENROL, json={"token": issued["token"]})
    assert expired.status_code == 403
    assert "expired at" in expired.json()["detail"]
    with api.sessions() as session:
        assert session.get(Gateway, str(issued["gateway_id"])) is None

    for bad in ["short", "A" * 42 + "\x00", "A" * 101, "../../etc/passwd-xxxxxxxxxxxx"]:
        r = await api.client.post(ENROL, json={"token": bad})
        assert r.status_code == 422, (bad, r.text)


async def test_only_staff_of_the_property_issue_tokens(api: Api) -> None:
    p2 = api.world.sites["P2"].property_id
    r = await api.client.post(TOKENS, json={"property_id": p2}, headers=api.as_role(Role.MANAGER))
    assert r.status_code == 404  # another property looks like none
    r = await api.client.post(
        TOKENS,
        json={"property_id": api.world.sites["P1"].property_id},
        headers=api.as_role(Role.INSTALLER),
    )
    assert r.status_code == 403
    # a gateway of another property cannot be taken over by naming its id
    taken = api.world.sites["P2"].gateway_id
    r = await api.client.post(
        TOKENS,
        json={"property_id": api.world.sites["P1"].property_id, "gateway_id": taken},
        headers=api.as_role(Role.ADMIN),
    )
    assert r.status_code == 409
    assert "taken" in r.json()["detail"]


def test_gateways_get_the_broker_without_the_clouds_own_login(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings = Settings(
        env="development",
        mqtt_url="mqtts://ingest:cloud-secret@broker.internal:8883",
        mqtt_ca_file=ca,
    )
    key = create_key(tmp_path / "key.pem")
    view = broker_view(settings, key)
    assert view.mqtt_url == "mqtts://broker.internal:8883"
    assert view.ca_pem == ca.read_text()
    public = broker_view(
        settings.model_copy(update={"gateway_mqtt_url": "mqtts://mqtt.example.com"}), key
    )
    assert public.mqtt_url == "mqtts://mqtt.example.com:8883"


def test_two_boxes_racing_with_one_token_get_one_identity(database_url: str) -> None:
    """A's consume holds the row; B's waits on it and, once A commits, finds the token used.
    PostgreSQL only: SQLite serialises writers before B could even try."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks and READ COMMITTED re-checks are PostgreSQL's")
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    try:
        with sessions.begin() as session:
            prop, _, _ = add_portfolio(session, "Race")
            issued = issue_token(session, property_id=prop.id, now=NOW, created_by="test")
        with sessions() as a, sessions() as b:
            consume(a, issued.token, NOW)  # A holds the row, not yet committed
            with ThreadPoolExecutor(1) as pool:
                b_try = pool.submit(consume, b, issued.token, NOW)
                with pytest.raises(FuturesTimeout):
                    b_try.result(timeout=0.5)  # B waits on A's row lock
                a.commit()
                with pytest.raises(TokenRefusedError, match="just used"):
                    b_try.result(timeout=10)
            b.rollback()
    finally:
        engine.dispose()
