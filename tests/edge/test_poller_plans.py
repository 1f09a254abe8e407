"""The poller's read plan meeting real meters: refused merged reads are split, text reaches the
outbox. Against the real pymodbus server on loopback."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from edge.meters.health import MeterStatus
from edge.meters.poller import BusPoller
from edge.meters.profiles import load_profile
from edge.meters.sink import OutboxSink
from edge.store.outbox import Outbox
from protocols.modbus.profile import Profile
from tests.edge.conftest import SimFactory, gateway_now, make_bus

pytestmark = pytest.mark.timeout(30)


def stored(outbox: Outbox) -> list[dict[str, Any]]:
    return [row.payload for row in outbox.pending(limit=100_000)]


def spans(poller: BusPoller, meter: int) -> list[tuple[int, int]]:
    return [(r.address, r.count) for r in poller.meters[meter].reads]


async def test_a_meter_refusing_long_reads_gets_split_reads_and_keeps_them(
    tcp_meters: SimFactory, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    sim = await tcp_meters("eastron-sdm630", 2)
    sim.meter(1).max_span = 20  # refuses (exception 02) any read of more than 20 registers
    bus = make_bus({"tcp": sim.address}, [1, 2], "eastron-sdm630")
    poller = BusPoller(bus, OutboxSink(outbox), now=gateway_now)
    caplog.set_level(logging.INFO, logger="edge.meters.poller")
    try:
        assert await poller.poll_once() == 2 * 18
        # 0x0000+76 refused -> 0x0000+18 read, 0x0034+24 refused -> 0x0034+12, 0x0046+6 read
        assert spans(poller, 0) == [(0x0000, 18), (0x0034, 12), (0x0046, 6), (0x0156, 4)]
        assert spans(poller, 1) == [(0x0000, 76), (0x0156, 4)]
        assert sim.injector.replies == {1: 6, 2: 2}
        assert await poller.poll_once() == 2 * 18
        assert sim.injector.replies == {1: 6 + 4, 2: 2 + 2}  # the working plan, remembered
    finally:
        poller.close()
    assert poller.meters[0].health.status is MeterStatus.OK
    rows = {(r["meter"], r["point"]): r["value"] for r in stored(outbox)}
    assert len(rows) == 2 * 18
    assert rows[("m1", "voltage_l1")] == 230.0
    assert rows[("m1", "import_energy")] == sim.meter(1).initial_kwh
    notes = [r for r in caplog.records if "refused merged reads" in r.getMessage()]
    assert len(notes) == 1, "logged once, when the plan changed"
    assert "[bus/m1]" in notes[0].getMessage()
    assert notes[0].levelno == logging.WARNING


async def test_a_meter_refusing_every_read_keeps_its_plan_and_goes_offline(
    tcp_meters: SimFactory, outbox: Outbox
) -> None:
    sim = await tcp_meters("eastron-sdm120", 1)
    sim.meter(1).max_span = 1  # nothing of this profile (2-register floats) can be read
    bus = make_bus({"tcp": sim.address}, [1], "eastron-sdm120", offline_after=2)
    poller = BusPoller(bus, OutboxSink(outbox), now=gateway_now)
    before = spans(poller, 0)
    try:
        for _ in range(2):
            assert await poller.poll_once() == 0
    finally:
        poller.close()
    assert spans(poller, 0) == before  # not degraded to one read per point for nothing
    health = poller.meters[0].health
    assert health.status is MeterStatus.OFFLINE
    assert "exception 0x02" in str(health.last_error)


def profile_with_text() -> Profile:
    """SDM120's registers plus a 10-character text point (meters put serials, firmware there)."""
    base = load_profile("eastron-sdm120").model_dump()
    text = {"name": "serial", "kind": "serial_number", "function": 4, "address": 0x0100,
            "type": "string", "length": 5}  # fmt: skip
    return Profile.model_validate({**base, "points": [*base["points"], text]})


async def test_text_points_reach_the_outbox_as_text_readings(
    tcp_meters: SimFactory, outbox: Outbox
) -> None:
    profile = profile_with_text()
    sim = await tcp_meters(profile, 2)
    bus = make_bus({"tcp": sim.address}, [1, 2], "sdm120-text")
    poller = BusPoller(bus, OutboxSink(outbox), now=gateway_now, profiles={"sdm120-text": profile})
    try:
        assert await poller.poll_once() == 2 * 11
    finally:
        poller.close()
    rows = stored(outbox)
    text = {r["meter"]: r for r in rows if r["point"] == "serial"}
    assert text["m1"]["text"] == "SIM00001"
    assert text["m2"]["text"] == "SIM00002"
    assert "value" not in text["m1"]
    assert text["m1"]["ts"] == gateway_now().isoformat()
    numbers = [r for r in rows if r["point"] != "serial"]
    assert all("text" not in r and isinstance(r["value"], float) for r in numbers)
