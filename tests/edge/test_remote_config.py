"""The remote configuration's file: written whole with mode 0600, applied again on start, and
left out when it no longer verifies."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.config import GatewayConfig, UplinkSettings
from edge.remote_config import RemoteConfig
from protocols.mqtt.downlink import Config, encode_config

KEY = Ed25519PrivateKey.generate()


class FakePoller:
    """Records the interval it is given (the real poller's wake-up is in the e2e test)."""

    name = "bus"

    def __init__(self) -> None:
        self.interval = 0.0

    def set_poll_interval(self, seconds: float) -> None:
        self.interval = seconds


def holder(tmp_path: Path, poller: FakePoller, links: list[UplinkSettings]) -> RemoteConfig:
    base = GatewayConfig.model_validate(
        {
            "gateway_id": "gw-1",
            "store": {"path": str(tmp_path / "gateway.db")},
            "buses": [{"name": "bus", "tcp": "127.0.0.1:502", "poll_interval_s": 60}],
        }
    )
    return RemoteConfig(base, KEY.public_key(), [poller], links.append)


def payload(version: int, **fields: object) -> bytes:
    config = Config.model_validate(
        {"gateway_id": "gw-1", "seq": version, "version": version, "ts": datetime.now(UTC)} | fields
    )
    return encode_config(config, KEY)


def test_applied_config_is_kept_private_and_reapplied_on_start(tmp_path: Path) -> None:
    poller, links = FakePoller(), list[UplinkSettings]()
    remote = holder(tmp_path, poller, links)
    assert remote.deliver(payload(2, poll_interval_s={"bus": 5}, link={"batch_records": 10}))
    assert (poller.interval, links[-1].batch_records) == (5, 10)
    assert remote.path.stat().st_mode & 0o777 == 0o600
    assert not remote.path.with_name(remote.path.name + ".tmp").exists()

    again, links = FakePoller(), []
    restarted = holder(tmp_path, again, links)
    restarted.load()
    assert (restarted.version, again.interval, links[-1].batch_records) == (2, 5, 10)


def test_a_refused_config_keeps_the_file_and_a_tampered_file_is_left_out(tmp_path: Path) -> None:
    poller, links = FakePoller(), list[UplinkSettings]()
    remote = holder(tmp_path, poller, links)
    assert remote.deliver(payload(2, poll_interval_s={"bus": 5}))
    kept = remote.path.read_bytes()
    assert not remote.deliver(payload(3, poll_interval_s={"nope": 1}))
    assert remote.error is not None
    assert remote.error == "version 3: poll_interval_s.nope: no bus of that name"
    assert (remote.version, remote.path.read_bytes()) == (2, kept)

    remote.path.write_bytes(kept.replace(b'"bus":5', b'"bus":1'))
    again = FakePoller()
    restarted = holder(tmp_path, again, [])
    restarted.load()
    assert (restarted.version, again.interval) == (None, 0.0)
    assert restarted.error == "bad_signature: the signature does not verify"
