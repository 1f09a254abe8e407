"""The BLE lock driver against an emulated lock over real GATT (bumble), through bleak."""

from __future__ import annotations

import asyncio
import json
import random
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from bleak import BleakClient
from pydantic import ValidationError

from edge.door.ble.codec import AnjuCodec
from edge.door.ble.counters import BLOCK, CounterFile
from edge.door.ble.driver import load_lock_key
from edge.door.ble.virtual import BumbleBleakClient
from edge.door.config import DoorConfig, door_relative_to
from edge.door.lock import UnlockRequest
from edge.store.outbox import Outbox
from protocols.errors import ConfigError
from protocols.lock.errors import LockRefusedError, LockTimeoutError, LockUnreachableError
from protocols.lock.gatt import COMMAND_UUID
from protocols.lock.messages import Bolt, Event, EventKind, Status, encode_event
from tests.edge.ble_world import KEY, NOW, ble_world

LOCK = "F0:00:00:00:00:01"
OTHER_LOCK = "F0:00:00:00:00:02"


def request(hold_s: float = 5.0) -> UnlockRequest:
    return UnlockRequest("front", "p-1", hold_s, NOW)


async def test_unlock_reaches_the_lock_and_keeps_the_link(tmp_path: Path) -> None:
    async with ble_world(tmp_path) as world:
        lock = await world.add_lock(LOCK, battery=87)
        driver = world.driver(LOCK)
        await driver.unlock(request(3.0))
        assert lock.bolt is Bolt.UNLOCKED
        assert lock.unlocks == 1
        assert driver.status is not None
        assert driver.status.battery == 87
        await driver.lock()
        assert lock.status.bolt is Bolt.LOCKED
        assert len(world.adapter.device.connections) == 1, "the link stays for the next command"
        assert lock.last_command == 2
        saved = driver.counters.path
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert json.loads(saved.read_text())["tx"] >= 3


async def test_a_replayed_command_is_refused_by_the_lock(tmp_path: Path) -> None:
    """An eavesdropper records the unlock frame and plays it back from its own radio."""
    async with ble_world(tmp_path) as world:
        lock = await world.add_lock(LOCK)
        driver = world.driver(LOCK)
        await driver.unlock(request())
        await driver.lock()
        recorded = lock.received[0]
        await driver._drop_link()
        attacker = await world.radio.adapter("attacker", "F0:00:00:00:00:EE")
        try:
            client = BleakClient(attacker.ble_device(LOCK), backend=BumbleBleakClient)
            await client.connect()
            await client.write_gatt_char(COMMAND_UUID, recorded, response=True)
            await client.write_gatt_char(COMMAND_UUID, recorded[:-1] + b"\x00", response=True)
            await client.disconnect()
        finally:
            await attacker.close()
        assert lock.unlocks == 1
        assert lock.bolt is Bolt.LOCKED
        assert lock.refused == ["stale", "auth"]


async def test_stale_gateway_counter_resyncs_from_the_lock(tmp_path: Path) -> None:
    """The gateway's counter file was lost (or restored from an old backup)."""
    async with ble_world(tmp_path) as world:
        lock = await world.add_lock(LOCK)
        lock.last_command = 500
        driver = world.driver(LOCK)
        await driver.unlock(request())
        assert lock.unlocks == 1
        assert lock.refused == ["stale"]
        assert lock.last_command == 501
        again = world.driver(LOCK)  # a restart: the counters come back from the file
        await driver._drop_link()
        await again.lock()
        assert lock.refused == ["stale"], "no second resync after a restart"


async def test_wrong_key_times_out_with_a_hint(tmp_path: Path) -> None:
    async with ble_world(tmp_path) as world:
        lock = await world.add_lock(LOCK, key=bytes(16))
        driver = world.driver(LOCK, command_timeout_s=0.3, attempts=1)
        with pytest.raises(LockTimeoutError, match="no authentic answer"):
            await driver.unlock(request())
        assert lock.unlocks == 0
        assert lock.refused == ["auth"]
        # the lock's own frames (its events) do not authenticate at the gateway either
        other = world.driver(LOCK, key=bytes(range(16, 32)), attempts=1, command_timeout_s=0.3)
        lock.key = bytes(range(16, 32))
        await other.read_status()
        other.codec = AnjuCodec(KEY)  # the gateway's key file changed under a running lock
        await lock.tamper()
        await _until(lambda: other.refused["auth"] == 1)
        await other._drop_link()


async def test_out_of_range_then_back(tmp_path: Path) -> None:
    async with ble_world(tmp_path) as world:
        lock = await world.add_lock(LOCK)
        driver = world.driver(LOCK, command_timeout_s=0.3)
        await driver.unlock(request())
        await lock.out_of_range()
        with pytest.raises(LockUnreachableError, match="not heard"):
            await driver.lock()
        await lock.advertise()
        await driver.lock()
        assert lock.bolt is Bolt.LOCKED


async def test_link_drops_mid_command_and_the_retry_lands(tmp_path: Path) -> None:
    async with ble_world(tmp_path) as world:
        lock = await world.add_lock(LOCK)
        driver = world.driver(LOCK, attempts=2)
        lock.drop_links = 1
        await driver.unlock(request())
        assert lock.unlocks == 2, "the lock acted on both tries (unlock is idempotent)"
        lock.drop_links = 2
        with pytest.raises(LockUnreachableError, match=r"disconnected|dropped"):
            await driver.lock()


async def test_jammed_bolt_is_refused(tmp_path: Path) -> None:
    async with ble_world(tmp_path) as world:
        lock = await world.add_lock(LOCK)
        driver = world.driver(LOCK)
        lock.jam = True
        with pytest.raises(LockRefusedError, match="jammed") as refused:
            await driver.unlock(request())
        assert refused.value.result == "jammed"


async def test_lock_events_reach_the_outbox(tmp_path: Path) -> None:
    """Low battery, forced open, held open, tamper: queued while nobody listens, delivered
    once the gateway connects, each exactly once and in order."""
    async with ble_world(tmp_path) as world:
        lock = await world.add_lock(LOCK, battery=30)
        await lock.set_battery(15)  # before any gateway connects: the lock keeps it
        outbox = Outbox(tmp_path / "gw.db")
        driver = world.driver(LOCK, poll_s=3600)
        stored = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as tg:
                service = tg.create_task(driver.run(outbox, stored.set))
                await _until(lambda: len(outbox.pending()) == 1)
                await lock.open_door()  # the bolt is locked: forced open
                await lock.held_open(45)
                await lock.close_door()
                await lock.tamper()
                await _until(lambda: len(outbox.pending()) == 5)
                service.cancel()
            rows = [row.payload for row in outbox.pending()]
        finally:
            outbox.close()
        assert [(r["event"], r["value"]) for r in rows] == [
            ("low_battery", 0),
            ("forced_open", 0),
            ("held_open", 45),
            ("closed", 0),
            ("tamper", 0),
        ]
        assert rows[0]["battery"] == 15
        assert rows[0]["type"] == "lock.event"
        assert {r["source"] for r in rows} == {r["door"] for r in rows}  # listed per door
        counters = [r["lock_counter"] for r in rows]
        assert counters == sorted(counters)
        assert stored.is_set()
        assert len(world.adapter.device.connections) == 0, "the service closed its link"


async def test_one_connection_per_adapter(tmp_path: Path) -> None:
    """Two doors on one adapter: each command takes the link over; never two at once."""
    async with ble_world(tmp_path) as world:
        first, second = await world.add_lock(LOCK), await world.add_lock(OTHER_LOCK)
        a, b = world.driver(LOCK), world.driver(OTHER_LOCK)
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, len(world.adapter.device.connections))
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())
        try:
            await asyncio.gather(*(d.unlock(request()) for d in (a, b, a, b, a)))
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        assert (first.unlocks, second.unlocks) == (3, 2)
        assert peak == 1


async def test_lock_reboot_keeps_counters_moving(tmp_path: Path) -> None:
    async with ble_world(tmp_path) as world:
        lock = await world.add_lock(LOCK)
        driver = world.driver(LOCK)
        await driver.unlock(request())
        seen = driver.counters.rx
        await lock.out_of_range()
        lock.reboot()
        await lock.advertise()
        await driver.lock()
        assert driver.counters.rx > seen
        assert lock.refused == []


async def _until(condition: Callable[[], bool], within_s: float = 5.0) -> None:
    """Waits on what another component (the outbox on disk) shows; it has no event to await."""
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def test_door_config_ties_ble_settings_to_a_ble_lock(tmp_path: Path) -> None:
    base = {"id": "front", "source": "cam", "gallery": "g.json"}
    ble = {"address": LOCK, "key_file": "keys/front.key", "counter_file": "state/front.json"}
    door = door_relative_to(
        DoorConfig.model_validate({**base, "lock": "ble", "ble": ble}), tmp_path
    )
    assert door.ble is not None
    assert door.ble.key_file == tmp_path / "keys/front.key"
    assert door.ble.adapter == "hci0"
    for bad in (
        {**base, "lock": "ble"},
        {**base, "ble": ble},
        {**base, "lock": "ble", "ble": {**ble, "address": "F0:00:00:00:00"}},
        {**base, "lock": "ble", "ble": {**ble, "attempts": 0}},
        {**base, "lock": "ble", "ble": {**ble, "adapter": "hci0\x00"}},
    ):
        with pytest.raises(ValidationError):
            DoorConfig.model_validate(bad)


def test_lock_key_file_forms(tmp_path: Path) -> None:
    (tmp_path / "raw.key").write_bytes(KEY)
    (tmp_path / "hex.key").write_text(KEY.hex() + "\n")
    (tmp_path / "short.key").write_text("abcd")
    assert load_lock_key(tmp_path / "raw.key") == load_lock_key(tmp_path / "hex.key") == KEY
    with pytest.raises(ConfigError, match="16 random bytes or 32 hex"):
        load_lock_key(tmp_path / "short.key")


def test_counter_file_reserves_blocks_and_refuses_garbage(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    counters = CounterFile(path)
    assert [counters.next_tx() for _ in range(3)] == [1, 2, 3]
    assert json.loads(path.read_text())["tx"] == 1 + BLOCK
    again = CounterFile(path)  # a crash: the rest of the block is skipped, never reused
    assert again.next_tx() == 1 + BLOCK
    for garbage in ("{", '{"tx": -1, "rx": 0}', '{"tx": "x"}', "[]", '{"tx": 1, "rx": 1e99}'):
        path.write_text(garbage)
        with pytest.raises(ConfigError):
            CounterFile(path)


async def test_hostile_notifications_are_counted_never_raised(tmp_path: Path) -> None:
    """Whatever a peripheral at the lock's address notifies, the driver counts and drops it;
    only authentic, fresh frames move its counters."""
    async with ble_world(tmp_path) as world:
        driver = world.driver(LOCK)
        rng = random.Random(7)
        for size in range(60):
            driver._on_frame(bytes(rng.randrange(256) for _ in range(size % 30)))
        event = encode_event(KEY, 5, Event(EventKind.TAMPER, Status(Bolt.LOCKED, False, 50)))
        driver._on_frame(event[:-1] + bytes([event[-1] ^ 1]))  # altered
        driver._on_frame(event)
        driver._on_frame(event)  # replayed
        assert driver.counters.rx == 5
        assert driver.refused["replay"] == 1
        assert driver.refused["auth"] >= 1
        assert sum(driver.refused.values()) == 62
        assert (await driver.next_event())["event"] == "tamper"


async def test_auto_relock_after_the_hold_reports_locked(tmp_path: Path) -> None:
    async with ble_world(tmp_path) as world:
        lock = await world.add_lock(LOCK, auto_relock=True)
        driver = world.driver(LOCK)
        await driver.unlock(request(hold_s=0.1))
        assert lock.status.bolt is Bolt.UNLOCKED
        event = await asyncio.wait_for(driver.next_event(), 5)
        assert (event["event"], event["bolt"]) == ("locked", "locked")
        await driver.unlock(request(hold_s=60))  # stopped before its hold ends: nothing leaks
