"""A door's lock key is registered with the cloud by its fingerprint only: the API keeps the
fingerprint and audits a re-key; `anju edge lock provision --cloud` writes the key on the
gateway and records its fingerprint on the door, over HTTP to a real server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import uvicorn
import yaml
from sqlalchemy import select

from cloud.models import AuditEvent, Door, Role
from cloud.security.crypto import FieldKeys
from edge.door.ble.driver import load_lock_key
from edge.door.ble.provision import fingerprint
from tests.cloud.conftest import Api
from tests.cloud.test_api_auth import app_on
from tests.conftest import free_port
from tests.test_cli import assert_one_line_error, run_anju

V1 = "/api/v1"


async def test_the_fingerprint_is_kept_and_a_rekey_audited(api: Api) -> None:
    door_id = api.world.sites["P1"].door_id
    url = f"{V1}/doors/{door_id}/lock-key"
    manager = api.as_role(Role.MANAGER)
    for bad in ("0123", "0123456789ABCDEF", "00" * 16, "0123456789abcdeg"):
        r = await api.client.put(url, json={"fingerprint": bad}, headers=manager)
        assert r.status_code == 422, bad
    for fp in ("0123456789abcdef", "fedcba9876543210"):
        r = await api.client.put(url, json={"fingerprint": fp}, headers=manager)
        assert r.status_code == 200, r.text
        assert r.json()["lock_key_fingerprint"] == fp
    with api.sessions() as session:
        details = session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "door.lock_key")
        ).all()
    assert [json.loads(d)["replaced"] for d in details] == [None, "0123456789abcdef"]


async def test_provision_records_the_fingerprint_on_the_cloud(
    api: Api, keys: FieldKeys, tmp_path: Path
) -> None:
    p1 = api.world.sites["P1"]
    with api.sessions() as session:
        code = session.get_one(Door, p1.door_id).code
    (tmp_path / "cam").mkdir()
    ble = {"address": "C4:7F:51:00:12:34", "key_file": "front.key", "counter_file": "c.json"}
    door = {"id": code, "source": "cam", "lock": "ble", "ble": ble}
    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump({"gateway_id": p1.gateway_id, "doors": [door]}))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app_on(api, keys), host="127.0.0.1", port=port, log_config=None)
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn's Server has a flag, no event
            await asyncio.sleep(0.01)  # a real server starting: nothing to drive
        args = ("edge", "lock", "provision", "--config", str(config), "--door", code,
                "--cloud", f"http://127.0.0.1:{port}")  # fmt: skip
        token = {"ANJU_API_TOKEN": api.world.tokens[Role.MANAGER]}
        done = await asyncio.to_thread(run_anju, *args, env=token)
        assert done.returncode == 0, done.stderr
        # a token of another organisation's staff finds no such door to register
        other = {"ANJU_API_TOKEN": api.world.tokens[Role.FINANCE]}
        refused = await asyncio.to_thread(
            run_anju, "edge", "lock", "register", "--config", str(config), "--door", code,
            "--cloud", f"http://127.0.0.1:{port}", env=other,
        )  # fmt: skip
    finally:
        server.should_exit = True
        await serving
    key = load_lock_key(tmp_path / "front.key")
    assert fingerprint(key) in done.stdout
    with api.sessions() as session:
        assert session.get_one(Door, p1.door_id).lock_key_fingerprint == fingerprint(key)
    assert_one_line_error(refused, "refused (403)")
