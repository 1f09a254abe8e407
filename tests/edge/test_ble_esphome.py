"""BLE locks through an ESPHome Bluetooth proxy: the real driver, bleak-esphome, aioesphomeapi
and habluetooth over TCP on loopback to an emulated proxy (tests/edge/esphome_proxy.py), whose
bumble central carries the GATT to an emulated lock on the virtual radio."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge.door.ble.codec import AnjuCodec
from edge.door.ble.config import BleLockSettings, EsphomeProxy
from edge.door.ble.driver import Adapters, BleLock
from edge.door.ble.emulator import EmulatedLock
from edge.door.ble.esphome import EsphomeRadio, load_noise_psk
from edge.door.ble.virtual import VirtualRadio
from edge.door.config import DoorConfig
from edge.door.lock import UnlockRequest
from edge.gateway import ConfiguredLocks
from protocols.errors import ConfigError
from protocols.lock.errors import LockUnreachableError
from protocols.lock.messages import Bolt
from tests.e2e.link_harness import wait_until
from tests.edge.ble_world import KEY, NOW
from tests.edge.esphome_proxy import EsphomeProxyEmulator

pytestmark = pytest.mark.timeout(30)

LOCK = "C4:7F:51:00:12:34"
FAR_LOCK = "C4:7F:51:00:12:99"


@dataclass
class Floor:
    radio: VirtualRadio
    proxy: EsphomeProxyEmulator
    esphome: EsphomeRadio
    folder: Path

    def settings(self, address: str, **extra: object) -> BleLockSettings:
        return BleLockSettings.model_validate(
            {
                "address": address,
                "key_file": self.folder / "unused.key",
                "counter_file": self.folder / f"{address.replace(':', '')}.json",
                "command_timeout_s": 2.0,
                "attempts": 1,
                "radio": "esphome",
                "proxies": [{"host": "127.0.0.1", "port": self.proxy.port}],
                **extra,
            }
        )

    def driver(self, address: str, **extra: object) -> BleLock:
        settings = self.settings(address, **extra)
        adapter = Adapters().get("proxy")
        return BleLock("front", settings, AnjuCodec(KEY), self.esphome, adapter, now=lambda: NOW)


@asynccontextmanager
async def floor(folder: Path) -> AsyncIterator[Floor]:
    radio = VirtualRadio()
    proxy = EsphomeProxyEmulator(radio, name="floor-3", mac="24:0A:C4:00:00:03")
    await proxy.start()
    esphome = EsphomeRadio([EsphomeProxy(host="127.0.0.1", port=proxy.port)])
    try:
        yield Floor(radio, proxy, esphome, folder)
    finally:
        await esphome.close()
        await proxy.stop()


@asynccontextmanager
async def lock_at(radio: VirtualRadio, address: str) -> AsyncIterator[EmulatedLock]:
    lock = EmulatedLock(radio, address, KEY)
    await lock.start()
    try:
        yield lock
    finally:
        await lock.stop()


def request() -> UnlockRequest:
    return UnlockRequest("front", "p-1", 3.0, NOW)


async def test_find_returns_the_lock_the_proxy_heard(tmp_path: Path) -> None:
    async with floor(tmp_path) as world, lock_at(world.radio, LOCK):
        device = await world.esphome.find(LOCK, "proxy", 5.0)
        assert device is not None
        assert device.address == LOCK
        assert device.details["source"] == "24:0A:C4:00:00:03"


async def test_unlock_through_the_proxy_is_answered_and_authenticated(tmp_path: Path) -> None:
    async with floor(tmp_path) as world, lock_at(world.radio, LOCK) as lock:
        driver = world.driver(LOCK)
        await driver.unlock(request())
        assert lock.bolt is Bolt.UNLOCKED
        assert lock.unlocks == 1
        assert driver.status is not None
        assert driver.status.bolt is Bolt.UNLOCKED
        assert world.proxy.writes >= 1, "the command crossed the proxy"
        assert driver.refused == {"auth": 0, "replay": 0, "frame": 0}
        await driver.lock()
        assert lock.bolt is Bolt.LOCKED
        assert lock.refused == []
        assert len(world.proxy.links) == 1, "the link stays for the next command"
        await driver._drop_link()


async def test_a_proxy_dropping_tcp_mid_command_fails_it_and_the_next_reconnects(
    tmp_path: Path,
) -> None:
    async with floor(tmp_path) as world, lock_at(world.radio, LOCK) as lock:
        driver = world.driver(LOCK)
        await driver.read_status()
        world.proxy.drop_tcp_on_write = 1
        with pytest.raises(LockUnreachableError):
            await driver.unlock(request())
        assert lock.unlocks == 0, "the write never reached the lock"
        await driver.unlock(request())
        assert lock.unlocks == 1
        assert lock.bolt is Bolt.UNLOCKED
        await driver._drop_link()


async def test_a_stopping_gateway_closes_its_proxy_connections(tmp_path: Path) -> None:
    """The locks `anju edge run` builds for `radio: esphome` doors hold API connections that
    reconnect by themselves; closing the gateway's locks ends them, so none outlives it."""
    key = tmp_path / "lock.key"
    key.write_bytes(KEY)
    async with floor(tmp_path) as world, lock_at(world.radio, LOCK) as lock:
        ble = world.settings(LOCK).model_dump() | {"key_file": key}
        door = DoorConfig.model_validate({"id": "front", "source": "usb:0", "lock": "ble",
                                          "ble": ble})  # fmt: skip
        locks = ConfiguredLocks(lambda: NOW)
        driver = locks(door)
        await driver.unlock(request())
        assert lock.unlocks == 1
        assert [s for s in world.proxy.sessions if not s.writer.is_closing()] != []
        await locks.aclose()

        async def all_closed() -> bool:
            return all(s.writer.is_closing() for s in world.proxy.sessions)

        await wait_until(all_closed, 10.0, "the proxy's API connections closed")


async def test_a_lock_out_of_range_is_not_found(tmp_path: Path) -> None:
    async with (
        floor(tmp_path) as world,
        lock_at(world.radio, LOCK),
        lock_at(world.radio, FAR_LOCK) as far,
    ):
        await far.out_of_range()
        assert await world.esphome.find(LOCK, "proxy", 5.0) is not None, "the proxy hears"
        assert await world.esphome.find(FAR_LOCK, "proxy", 0.3) is None
        driver = world.driver(FAR_LOCK, command_timeout_s=0.6)
        with pytest.raises(LockUnreachableError, match="not heard"):
            await driver.unlock(request())
        assert far.unlocks == 0


async def test_a_lock_is_reached_through_another_proxy_when_its_nearest_goes_down(
    tmp_path: Path,
) -> None:
    """Two floors' proxies hear the lock; the louder one carries it until it dies."""
    radio = VirtualRadio()
    near = EsphomeProxyEmulator(radio, name="floor-3", mac="24:0A:C4:00:00:03", rssi=-50)
    far = EsphomeProxyEmulator(radio, name="floor-4", mac="24:0A:C4:00:00:04", rssi=-90)
    await near.start()
    await far.start()
    esphome = EsphomeRadio([EsphomeProxy(host="127.0.0.1", port=p.port) for p in (near, far)])
    world = Floor(radio, near, esphome, tmp_path)
    try:
        async with lock_at(radio, LOCK) as lock:
            driver = world.driver(LOCK, attempts=2)
            await driver.unlock(request())
            assert (near.writes, far.writes) == (1, 0)
            await near.stop()  # the floor-3 proxy loses power
            await driver.lock()
            assert far.writes == 1
            assert lock.bolt is Bolt.LOCKED
            assert lock.unlocks == 1
            await driver._drop_link()
    finally:
        await esphome.close()
        await near.stop()  # already off when the test got that far
        await far.stop()


PSK = bytes(range(32))


async def test_an_encrypted_proxy_carries_the_unlock_and_refuses_a_wrong_key(
    tmp_path: Path,
) -> None:
    radio = VirtualRadio()
    proxy = EsphomeProxyEmulator(radio, name="floor-5", mac="24:0A:C4:00:00:05", psk=PSK)
    await proxy.start()
    right, wrong = tmp_path / "right.psk", tmp_path / "wrong.psk"
    right.write_text(base64.b64encode(PSK).decode())
    wrong.write_text(base64.b64encode(bytes(32)).decode())
    radios = [
        EsphomeRadio([EsphomeProxy(host="127.0.0.1", port=proxy.port, noise_psk_file=key)])
        for key in (right, wrong)
    ]
    try:
        async with lock_at(radio, LOCK) as lock:
            world = Floor(radio, proxy, radios[0], tmp_path)
            driver = world.driver(LOCK)
            await driver.unlock(request())
            assert lock.unlocks == 1
            assert proxy.writes == 1
            await driver._drop_link()
            impostor = Floor(radio, proxy, radios[1], tmp_path).driver(
                LOCK, command_timeout_s=0.6, counter_file=tmp_path / "impostor.json"
            )
            with pytest.raises(LockUnreachableError, match="not heard"):
                await impostor.unlock(request())
            assert lock.unlocks == 1
            assert proxy.writes == 1
    finally:
        for each in radios:
            await each.close()
        await proxy.stop()


# ---- configuration ---------------------------------------------------------------------------


def settings(tmp_path: Path, **block: object) -> BleLockSettings:
    return BleLockSettings.model_validate(
        {"address": LOCK, "key_file": tmp_path / "k", "counter_file": tmp_path / "c", **block}
    )


@pytest.mark.parametrize(
    ("block", "complaint"),
    [
        ({"radio": "esphome"}, "proxies"),
        ({"radio": "host", "proxies": [{"host": "10.0.0.5"}]}, "proxies"),
        ({"radio": "esphome", "proxies": [{"host": "p1; rm -rf /"}]}, "pattern"),
        ({"radio": "esphome", "proxies": [{"host": "http://p1"}]}, "pattern"),
        ({"radio": "esphome", "proxies": [{"host": "p1", "port": 0}]}, "greater"),
        ({"radio": "esphome", "proxies": [{"host": "p1", "port": 70000}]}, "less"),
        ({"radio": "esphome", "proxies": [{"host": "a" * 254}]}, "at most"),
        ({"radio": "esphome", "proxies": [{"host": "p1", "password": "x"}]}, "Extra"),
        ({"radio": "esphome", "proxies": [{"host": "p1"}, {"host": "P1"}]}, "once"),
        ({"radio": "esphome", "proxies": [{"host": f"p{i}"} for i in range(33)]}, "at most"),
        ({"radio": "bluetooth"}, "literal"),
    ],
)
def test_hostile_proxy_blocks_are_refused(
    tmp_path: Path, block: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        settings(tmp_path, **block)


def test_a_proxy_block_is_accepted(tmp_path: Path) -> None:
    ble = settings(
        tmp_path,
        radio="esphome",
        proxies=[{"host": "proxy-3.lan", "noise_psk_file": "keys/p3.key"}, {"host": "10.1.2.3"}],
    )
    assert [(p.host, p.port) for p in ble.proxies] == [("proxy-3.lan", 6053), ("10.1.2.3", 6053)]


@pytest.mark.parametrize("content", [b"", b"not base64!", b"c2hvcnQ=\n", bytes(32)])
def test_a_bad_proxy_key_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "p.key"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="32 bytes in base64"):
        load_noise_psk(EsphomeProxy(host="p1", noise_psk_file=path))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_proxy_key_file_is_refused_unread(tmp_path: Path) -> None:
    """A key path naming an endless file (or a huge one) is refused after a key's worth of it,
    instead of the gateway reading until it runs out of memory."""
    with pytest.raises(ConfigError, match="32 bytes in base64"):
        load_noise_psk(EsphomeProxy(host="p1", noise_psk_file=Path("/dev/zero")))
    padded = tmp_path / "padded.key"
    padded.write_text("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" + " " * 4096)
    with pytest.raises(ConfigError, match="32 bytes in base64"):
        load_noise_psk(EsphomeProxy(host="p1", noise_psk_file=padded))


def test_a_proxy_key_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "p.key"
    path.write_text("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
    assert load_noise_psk(EsphomeProxy(host="p1", noise_psk_file=path)) == (
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    )
    missing = EsphomeProxy(host="p1", noise_psk_file=tmp_path / "absent.key")
    with pytest.raises(ConfigError, match=r"absent\.key"):
        load_noise_psk(missing)
