"""The cloud's side of commands on a real database: the key file, issuing through the API,
claiming for sending (once), and recording results (the first one settles the command)."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from anju.cli import cli
from cloud.api.problems import ProblemError
from cloud.api.routes.commands import app_signing_key
from cloud.commands import service
from cloud.commands.keys import create_key, read_key, signing_key
from cloud.config import Settings
from cloud.db import make_engine, make_sessionmaker
from cloud.ingest.store import register_gateway
from cloud.models import AuditEvent, GatewayCommand, Role
from protocols.errors import ConfigError
from protocols.mqtt import commands as cmd
from protocols.mqtt import messages as msg
from tests.cloud.conftest import Api
from tests.cloud.world import COMMAND_KEY, NOW

GATEWAY = "gw-P1"


def test_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "command-key.pem"
    key = create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cmd.public_key_text(read_key(path).public_key()) == cmd.public_key_text(key.public_key())
    with pytest.raises(ConfigError, match="never overwritten"):
        create_key(path)
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="not a PEM private key"):
        read_key(tmp_path / "bad.pem")


def test_production_needs_a_key_and_development_makes_one(tmp_path: Path) -> None:
    prod = Settings(secret_key="s" * 32, data_dir=tmp_path / "prod")
    with pytest.raises(ConfigError, match="anju cloud keys init"):
        signing_key(prod)
    dev = Settings(env="development", data_dir=tmp_path / "dev")
    made = signing_key(dev)
    assert (tmp_path / "dev" / "command-key.pem").exists()
    assert cmd.public_key_text(signing_key(dev).public_key()) == cmd.public_key_text(
        made.public_key()
    )


def test_keys_init_prints_the_public_key_for_gateway_configs(tmp_path: Path) -> None:
    env = {"ANJU_ENV": "development", "ANJU_COMMAND_KEY_FILE": str(tmp_path / "k.pem")}
    first = CliRunner().invoke(cli, ["cloud", "keys", "init"], env=env)
    assert first.exit_code == 0, first.output
    public = cmd.public_key_text(read_key(tmp_path / "k.pem").public_key())
    assert f"public_key: {public}" in first.output
    again = CliRunner().invoke(cli, ["cloud", "keys", "init"], env=env)
    assert again.exit_code != 0
    shown = CliRunner().invoke(cli, ["cloud", "keys", "show"], env=env)
    assert f"public_key: {public}" in shown.output


async def test_api_issues_signed_audited_commands(api: Api) -> None:
    manager = api.as_role(Role.MANAGER)
    url = f"/api/v1/gateways/{GATEWAY}/commands"
    r = await api.client.post(
        url, json={"name": "door.unlock", "args": {"door": "d-1"}, "ttl_s": 60}, headers=manager
    )
    assert r.status_code == 202, r.text
    out = r.json()
    assert (out["state"], out["issued_by"], out["args"]) == (
        "queued",
        "user-manager",
        {"door": "d-1"},
    )
    assert out["results"] == []
    with api.sessions() as session:
        row = session.get_one(GatewayCommand, out["id"])
        sent = msg.decode(cmd.Command, row.payload.encode())
        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "gateway.command")
        ).one()
    public = COMMAND_KEY.public_key()
    cmd.check(sent, public, gateway_id=GATEWAY, now=sent.issued_at, skew=timedelta())
    assert sent.expires_at - sent.issued_at == timedelta(seconds=60)
    assert out["id"] in audit.detail
    got = await api.client.get(f"{url}/{out['id']}", headers=api.as_role(Role.MAINTENANCE))
    assert (got.status_code, got.json()["name"]) == (200, "door.unlock")
    assert (await api.client.get(f"{url}/{uuid.uuid4()}", headers=manager)).status_code == 404
    for bad in ({"name": "Reboot!"}, {"name": "ping", "args": {"a": {"nested": 1}}},
                {"name": "ping", "ttl_s": 10**6}):  # fmt: skip
        assert (await api.client.post(url, json=bad, headers=manager)).status_code == 422


async def test_opening_a_door_needs_more_than_sending_commands(api: Api) -> None:
    """An installer may ping the gateway (checking it is reachable) but not open its doors:
    refused before anything is signed, queued or audited."""
    installer = api.as_role(Role.INSTALLER)
    url = f"/api/v1/gateways/{GATEWAY}/commands"
    ping = await api.client.post(url, json={"name": "ping"}, headers=installer)
    assert ping.status_code == 202, ping.text
    unlock = {"name": "door.unlock", "args": {"door": "d-1"}}
    refused = await api.client.post(url, json=unlock, headers=installer)
    assert refused.status_code == 403, refused.text
    assert "doors.unlock" in refused.text
    with api.sessions() as session:
        names = session.scalars(
            select(GatewayCommand.name).where(GatewayCommand.issued_by == "user-installer")
        ).all()
        audited = session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "gateway.command")
        ).all()
    assert names == ["ping"]
    assert [d for d in audited if "door.unlock" in d] == []
    manager = await api.client.post(url, json=unlock, headers=api.as_role(Role.MANAGER))
    assert manager.status_code == 202, manager.text


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    made = make_sessionmaker(engine)
    with made.begin() as session:
        register_gateway(session, GATEWAY)
        register_gateway(session, "gw-2")
    yield made
    engine.dispose()


def issue(sessions: sessionmaker[Session], ttl_s: int = 300, gateway: str = GATEWAY) -> str:
    with sessions.begin() as session:
        return service.issue(
            session, COMMAND_KEY, gateway, "ping", {}, issued_by="t", now=NOW,
            ttl=timedelta(seconds=ttl_s),
        ).id  # fmt: skip


def test_a_command_is_claimed_once_and_expires_unsent(sessions: sessionmaker[Session]) -> None:
    live, short = issue(sessions), issue(sessions, ttl_s=5)
    with sessions.begin() as session:
        claimed = service.claim(session, NOW + timedelta(seconds=10))
    assert [c[0] for c in claimed] == [live]
    with sessions.begin() as session:
        assert service.claim(session, NOW + timedelta(seconds=10)) == []
        assert session.get_one(GatewayCommand, short).state == "expired"
        service.unclaim(session, [live])
    with sessions.begin() as session:
        assert [c[0] for c in service.claim(session, NOW, only=live)] == [live]


def test_the_first_result_settles_a_command(sessions: sessionmaker[Session]) -> None:
    first = issue(sessions)

    def result(command_id: str | None, gateway: str = GATEWAY, **kw: object) -> cmd.CommandResult:
        fields: dict[str, object] = {"status": "done", "ts": NOW} | kw
        return cmd.CommandResult(
            gateway_id=gateway,
            command_id=uuid.UUID(command_id) if command_id else None,
            **fields,
        )

    reports = [
        ("t", result(first, data={"version": "x"})),
        ("t", result(first, status="rejected", reason="replayed")),
        ("t", result(str(uuid.uuid4()))),  # never issued
        ("t", result(first, gateway="gw-2")),  # not that gateway's command
        ("t", result(None, status="rejected", reason="malformed")),
    ]
    with sessions.begin() as session:
        recorded = service.record_results(session, reports, NOW)
    assert [r.reason for r in recorded.rejects] == ["unknown_command"] * 3
    assert recorded.repeated == 0
    with sessions() as session:
        row = session.get_one(GatewayCommand, first)
        assert (row.state, row.result) == ("done", {"version": "x"})
        assert [(r.status, r.reason) for r in service.results_of(session, first)] == [
            ("done", None),
            ("rejected", "replayed"),
        ]


@pytest.mark.timeout(30)
def test_a_result_published_again_is_recorded_once(sessions: sessionmaker[Session]) -> None:
    """A gateway keeps a result until the broker has it, so a restart can send it twice:
    in a later batch, or twice in one. A later result of the same kind is still kept."""
    command = issue(sessions)

    def result(ts_s: float, **kw: object) -> tuple[str, cmd.CommandResult]:
        fields: dict[str, object] = {"status": "done", "data": {"n": ts_s}} | kw
        return "t", cmd.CommandResult(
            gateway_id=GATEWAY,
            command_id=uuid.UUID(command),
            ts=NOW + timedelta(seconds=ts_s, microseconds=123),
            **fields,
        )

    with sessions.begin() as session:
        first = service.record_results(session, [result(1)], NOW)
    with sessions.begin() as session:
        again = service.record_results(session, [result(1), result(1), result(2)], NOW)
    with sessions.begin() as session:
        refusals = [result(3, status="rejected", reason="replayed", data={})] * 2
        twice = service.record_results(session, refusals, NOW)
    assert (first.repeated, again.repeated, twice.repeated) == (0, 2, 1)
    with sessions() as session:
        rows = service.results_of(session, command)
        assert [(r.status, r.reason, r.data) for r in rows] == [
            ("done", None, {"n": 1}),
            ("done", None, {"n": 2}),
            ("rejected", "replayed", {}),
        ]
        assert session.get_one(GatewayCommand, command).result == {"n": 1}


def test_an_unconfigured_cloud_answers_503(tmp_path: Path) -> None:
    """Not through the app fixture: its key is injected. The route reads the configured one."""
    app = FastAPI()
    app.state.settings = Settings(secret_key="s" * 32, data_dir=tmp_path)
    app.state.command_key = None
    with pytest.raises(ProblemError) as caught:
        app_signing_key(app)
    assert caught.value.status == 503
    key = Ed25519PrivateKey.generate()
    app.state.command_key = key
    assert app_signing_key(app) is key
