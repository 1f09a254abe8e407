"""The remote configuration on the gateway: its file written whole with mode 0600, applied
again on start and left out when it no longer verifies; buses and meters replaced only where
they changed, and a config whose parts do not build refused with the previous one kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.config import GatewayConfig, UplinkSettings
from edge.gateway import simulated_lock
from edge.parts import Parts
from edge.remote_config import RemoteConfig
from edge.store.outbox import Outbox
from protocols.mqtt.downlink import Config, encode_config
from tests.face_assets import gallery_file, models_dir

KEY = Ed25519PrivateKey.generate()
BUS = {"name": "bus", "tcp": "127.0.0.1:502", "poll_interval_s": 60}


def meter(unit: int, profile: str = "eastron-sdm120") -> dict[str, Any]:
    return {"id": f"m{unit}", "unit_id": unit, "profile": profile}


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "gateway.db")
    yield box
    box.close()


class Gateway:
    """A gateway's parts and remote configuration, built as `run_gateway` builds them (not
    started: what runs is in the end-to-end test)."""

    def __init__(self, tmp_path: Path, outbox: Outbox) -> None:
        base = GatewayConfig.model_validate(
            {
                "gateway_id": "gw-1",
                "store": {"path": str(tmp_path / "gateway.db")},
                "buses": [BUS | {"devices": [meter(1)]}],
            }
        )
        self.links: list[UplinkSettings] = []
        self.parts = Parts("gw-1", outbox, lambda: None, simulated_lock, now=lambda: NOW)
        self.remote = RemoteConfig(base, KEY.public_key(), self.parts, self.links.append)
        self.remote.load()

    def intervals(self) -> dict[str, float]:
        return {p.name: p.bus.poll_interval_s for p in self.parts.pollers}

    def meters(self) -> dict[str, list[str]]:
        return {p.name: [m.device.id for m in p.meters] for p in self.parts.pollers}


NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
async def gateway(tmp_path: Path, outbox: Outbox) -> Gateway:
    """Async: a poller's Modbus client is made on the running loop."""
    return Gateway(tmp_path, outbox)


def payload(version: int, **fields: object) -> bytes:
    config = Config.model_validate(
        {"gateway_id": "gw-1", "seq": version, "version": version, "ts": NOW} | fields
    )
    return encode_config(config, KEY)


async def test_applied_config_is_kept_private_and_reapplied_on_start(
    gateway: Gateway, tmp_path: Path, outbox: Outbox
) -> None:
    remote = gateway.remote
    assert remote.deliver(payload(2, poll_interval_s={"bus": 5}, link={"batch_records": 10}))
    assert (gateway.intervals(), gateway.links[-1].batch_records) == ({"bus": 5}, 10)
    assert remote.path.stat().st_mode & 0o777 == 0o600
    assert not remote.path.with_name(remote.path.name + ".tmp").exists()

    restarted = Gateway(tmp_path, outbox)
    assert (restarted.remote.version, restarted.intervals()) == (2, {"bus": 5})
    assert restarted.links[-1].batch_records == 10


async def test_a_refused_config_keeps_the_file_and_a_tampered_file_is_left_out(
    gateway: Gateway, tmp_path: Path, outbox: Outbox
) -> None:
    remote = gateway.remote
    assert remote.deliver(payload(2, poll_interval_s={"bus": 5}))
    kept = remote.path.read_bytes()
    assert not remote.deliver(payload(3, poll_interval_s={"nope": 1}))
    assert remote.error == "version 3: poll_interval_s.nope: no bus of that name"
    assert (remote.version, remote.path.read_bytes()) == (2, kept)

    remote.path.write_bytes(kept.replace(b'"bus":5', b'"bus":1'))
    restarted = Gateway(tmp_path, outbox)
    assert (restarted.remote.version, restarted.intervals()) == (None, {"bus": 60})
    assert restarted.remote.error == "bad_signature: the signature does not verify"


async def test_only_the_buses_that_changed_get_new_pollers(gateway: Gateway) -> None:
    first = gateway.parts.pollers[0]
    other = {"name": "east", "tcp": "127.0.0.1:503", "devices": [meter(7)]}
    # a bus added: the unchanged one keeps its poller
    assert gateway.remote.deliver(payload(2, buses=[BUS | {"devices": [meter(1)]}, other]))
    assert gateway.parts.pollers[0] is first
    assert gateway.meters() == {"bus": ["m1"], "east": ["m7"]}
    east = gateway.parts.pollers[1]
    # its interval only: the same poller, retimed
    assert gateway.remote.deliver(
        payload(3, buses=[BUS | {"devices": [meter(1)]}, other | {"poll_interval_s": 2}])
    )
    assert gateway.parts.pollers[1] is east
    assert gateway.intervals() == {"bus": 60, "east": 2}
    # a meter added to the first bus: that bus alone is replaced; the other bus is dropped
    assert gateway.remote.deliver(payload(4, buses=[BUS | {"devices": [meter(1), meter(2)]}]))
    assert gateway.parts.pollers[0] is not first
    assert gateway.meters() == {"bus": ["m1", "m2"]}


async def test_a_config_whose_meters_cannot_be_polled_keeps_the_previous(gateway: Gateway) -> None:
    before = list(gateway.parts.pollers)
    bad = BUS | {"devices": [meter(1), meter(2, "no-such-meter")]}
    assert not gateway.remote.deliver(payload(2, buses=[bad]))
    assert gateway.remote.error is not None
    assert gateway.remote.error.startswith("version 2: unknown meter profile 'no-such-meter'")
    assert gateway.parts.pollers == before
    assert (gateway.remote.version, gateway.remote.path.exists()) == (None, False)
    # the schema's refusals are the file's: two buses of one name
    twice = [BUS, BUS]
    with pytest.raises(ValueError, match="bus names must be unique"):
        payload(3, buses=twice)


def test_a_remote_profile_is_a_name_never_a_path() -> None:
    """Attack: a config that makes the gateway read a file of the sender's choosing."""
    for profile in ("../../../etc/passwd.yaml", "/etc/shadow", "x.yml"):
        with pytest.raises(ValueError, match="profile must be a profile's name"):
            payload(2, buses=[BUS | {"devices": [meter(1, profile)]}])
    with pytest.raises(ValueError, match="should match pattern"):
        payload(2, buses=[BUS | {"name": "b\x00"}])


async def test_doors_are_replaced_only_when_they_change(gateway: Gateway, tmp_path: Path) -> None:
    """A door added remotely is built with its models; a config that changes another door only
    leaves it running; a door whose models do not verify is refused, the running ones kept."""
    frames = tmp_path / "frames"
    frames.mkdir()
    gallery = gallery_file(tmp_path / "gallery.json", {"p-obama": "obama.jpg"})
    front = {"id": "front", "source": str(frames), "gallery": str(gallery),
             "models_dir": str(models_dir())}  # fmt: skip
    assert gateway.remote.deliver(payload(2, doors=[front]))
    (door,) = gateway.parts.doors
    assert set(gateway.parts.locks) == {"front"}
    back = front | {"id": "back"}
    assert gateway.remote.deliver(payload(3, doors=[front, back]))
    assert gateway.parts.doors[0] is door
    assert [d.door_id for d in gateway.parts.doors] == ["front", "back"]

    empty = tmp_path / "no-models"
    empty.mkdir()
    assert not gateway.remote.deliver(payload(4, doors=[front, back | {"models_dir": str(empty)}]))
    assert gateway.remote.error is not None
    assert gateway.remote.error.startswith("version 4: ")
    assert (gateway.remote.version, [d.door_id for d in gateway.parts.doors]) == (
        3,
        ["front", "back"],
    )
