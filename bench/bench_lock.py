"""Face match to lock acknowledged, over the emulated BLE link, beside baselines in this process.

- unlock acknowledged (authenticated command out, authenticated answer in, counters kept) with
  the link kept, and with connection setup each time (connect, discover, subscribe), vs a bare
  GATT round trip on the same virtual link (bleak write + a notification echoed back, no crypto)
- face match (detect, align, embed, match one 640x480 frame) followed by the unlock: the time
  from the frame to the lock's acknowledgement (goal: median <= 300 ms without setup)
- the same unlock through an ESPHome Bluetooth proxy (the emulator of tests/edge/esphome_proxy.py
  on loopback TCP: aioesphomeapi, bleak-esphome and habluetooth on the gateway's side), vs the
  direct unlock above

The radio is bumble's in-process virtual link: its own cost is near zero, so these figures are
the software path (bleak, bumble's host stack, our driver and crypto); a real link adds the
connection interval (7.5-50 ms per round trip) and, with setup, the advertising interval.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from bleak import BleakClient

from edge.door.ble.codec import AnjuCodec
from edge.door.ble.config import BleLockSettings, EsphomeProxy
from edge.door.ble.driver import Adapters, BleLock
from edge.door.ble.emulator import EmulatedLock
from edge.door.ble.esphome import EsphomeRadio
from edge.door.ble.virtual import BumbleBleakClient, VirtualRadio
from edge.door.lock import UnlockRequest
from edge.door.models import load_engine
from protocols.face.contract import l2_normalise
from protocols.face.gallery import Gallery, Identity
from protocols.lock.gatt import COMMAND_UUID, NOTIFY_UUID
from tests.edge.esphome_proxy import EsphomeProxyEmulator
from tests.face_assets import models_dir, portrait_frame

THREADS = int(os.environ.get("ANJU_BENCH_THREADS", "2"))
ROUNDS = 60
SETUP_ROUNDS = 20
KEY = bytes(range(16))
LOCK, ECHO = "F0:00:00:00:00:01", "F0:00:00:00:00:02"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def _line(name: str, samples: list[float], goal: str = "") -> None:
    med, p95 = _stats(samples)
    print(f"  {name:<37} median {med * 1e3:7.2f} ms  p95 {p95 * 1e3:7.2f} ms{goal}")


class _Echo(EmulatedLock):
    """The baseline peer: notifies back whatever is written, no protocol."""

    async def _on_write(self, connection, value: bytes) -> None:  # type: ignore[no-untyped-def]
        await self.device.notify_subscriber(connection, self._notify, bytes(value))


async def _bare_round_trips(radio: VirtualRadio) -> list[float]:
    adapter = radio.adapters["hci0"]
    got: asyncio.Queue[bytes] = asyncio.Queue()
    client = BleakClient(adapter.ble_device(ECHO), backend=BumbleBleakClient)
    await client.connect()
    await client.start_notify(NOTIFY_UUID, lambda _c, d: got.put_nowait(bytes(d)))
    samples = []
    frame = bytes(16)
    for _ in range(ROUNDS):
        t = time.perf_counter()
        await client.write_gatt_char(COMMAND_UUID, frame, response=True)
        await got.get()
        samples.append(time.perf_counter() - t)
    await client.disconnect()
    return samples


async def _run(folder: Path) -> None:
    engine = load_engine(models_dir(), threads=THREADS)
    frame = portrait_frame("obama2.jpg", face_px=150, x=200, y=60)
    enrolled = engine.analyze(portrait_frame("obama.jpg", face_px=150, x=200, y=60)).main
    assert enrolled is not None
    assert enrolled.embedding is not None
    others = l2_normalise(np.random.default_rng(1).standard_normal((999, 192)).astype(np.float32))
    gallery = Gallery(
        [Identity("obama")] + [Identity(f"p{i}") for i in range(999)],
        np.vstack([enrolled.embedding[None, :], others]),
    )
    radio = VirtualRadio()
    adapter = await radio.adapter("hci0", "F0:00:00:00:00:A0")
    lock = EmulatedLock(radio, LOCK, KEY)
    echo = _Echo(radio, ECHO, KEY, name="echo")
    await lock.start()
    await echo.start()
    settings = BleLockSettings(
        address=LOCK, key_file=folder / "k", counter_file=folder / "c.json", attempts=1
    )
    driver = BleLock(
        "front", settings, AnjuCodec(KEY), radio, Adapters().get("hci0"), now=lambda: NOW
    )
    request = UnlockRequest("front", "obama", 5.0, NOW)

    async def match_then_unlock() -> None:
        main = await asyncio.to_thread(lambda: engine.analyze(frame).main)
        assert main is not None
        assert main.embedding is not None
        match = gallery.match(main.embedding)
        assert match.identity is not None
        assert match.identity.person_id == "obama"
        await driver.unlock(request)

    async def timed(step, rounds: int, setup: bool, via: BleLock = driver) -> list[float]:  # type: ignore[no-untyped-def]
        samples = []
        for _ in range(rounds):
            if setup:
                await via._drop_link()
            t = time.perf_counter()
            await step()
            samples.append(time.perf_counter() - t)
        return samples

    try:
        await driver.unlock(request)  # warm-up: first connection, first counter block
        await match_then_unlock()
        bare = await _bare_round_trips(radio)
        kept = await timed(lambda: driver.unlock(request), ROUNDS, setup=False)
        fresh = await timed(lambda: driver.unlock(request), SETUP_ROUNDS, setup=True)
        face = await timed(match_then_unlock, ROUNDS // 2, setup=False)
        face_fresh = await timed(match_then_unlock, SETUP_ROUNDS, setup=True)
        await driver._drop_link()
        proxy = EsphomeProxyEmulator(radio, name="floor-1", mac="24:0A:C4:00:00:01")
        await proxy.start()
        esphome = EsphomeRadio([EsphomeProxy(host="127.0.0.1", port=proxy.port)])
        far = settings.model_copy(update={"counter_file": folder / "proxy.json", "attempts": 2})
        via = BleLock("front", far, AnjuCodec(KEY), esphome, Adapters().get("p"), now=lambda: NOW)
        try:
            await via.unlock(request)  # warm-up: the proxy's API connection, a counter resync
            proxied = await timed(lambda: via.unlock(request), ROUNDS, setup=False, via=via)
            proxied_fresh = await timed(lambda: via.unlock(request), SETUP_ROUNDS, True, via)
        finally:
            await via._drop_link()
            await esphome.close()
            await proxy.stop()
    finally:
        await driver._drop_link()
        await adapter.close()
        await lock.stop()
        await echo.stop()
    print(f"lock over the emulated link (bumble virtual radio), {THREADS} face threads:")
    _line("bare GATT round trip (baseline)", bare)
    _line("unlock acknowledged, link kept", kept)
    _line("unlock acknowledged, with setup", fresh)
    _line("face match -> lock ack, link kept", face, "   (goal median <= 300)")
    _line("face match -> lock ack, with setup", face_fresh)
    _line("unlock via ESPHome proxy, link kept", proxied)
    _line("unlock via ESPHome proxy, with setup", proxied_fresh)
    (bm, bp), (km, kp), (pm, pp) = _stats(bare), _stats(kept), _stats(proxied)
    print(f"  ratio unlock / bare round trip: median {km / bm:.2f}x  p95 {kp / bp:.2f}x")
    print(f"  ratio proxied / direct unlock: median {pm / km:.2f}x  p95 {pp / kp:.2f}x")
    print(f"  lock refusals seen: {lock.refused or 'none'}; unlocks acted on: {lock.unlocks}")


def main() -> None:
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_run(Path(folder)))
    print(f"load average at end: {os.getloadavg()}")
