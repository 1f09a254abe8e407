"""BusPoller against real pymodbus servers on loopback, including every injected fault."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from anju.sim.meters import Fault
from edge.config import ModbusBus
from edge.meters.health import MeterStatus
from edge.meters.poller import BusPoller, Plan
from edge.meters.sink import OutboxSink
from edge.store.outbox import Outbox
from protocols.mqtt.messages import Quality
from tests.edge.conftest import PollClock, SimFactory, gateway_now, make_bus

pytestmark = pytest.mark.timeout(30)


def tcp_bus(address: str, units: list[int], profile: str, **kw: Any) -> ModbusBus:
    return make_bus({"tcp": address}, units, profile, **kw)


def stored(outbox: Outbox) -> list[dict[str, Any]]:
    return [row.payload for row in outbox.pending(limit=100_000)]


async def test_merged_poll_sends_two_requests_per_sdm630(
    tcp_meters: SimFactory, outbox: Outbox
) -> None:
    sim = await tcp_meters("eastron-sdm630", 3)
    poller = BusPoller(
        tcp_bus(sim.address, [1, 2, 3], "eastron-sdm630"), OutboxSink(outbox), now=gateway_now
    )
    try:
        assert await poller.poll_once() == 3 * 18
    finally:
        poller.close()
    assert sim.injector.replies == {1: 2, 2: 2, 3: 2}  # counted on the server side of the wire
    rows = stored(outbox)
    by_point = {(r["meter"], r["point"]): r for r in rows}
    assert by_point[("m1", "voltage_l2")]["value"] == 230.0
    assert by_point[("m3", "import_energy")]["value"] == sim.meter(3).initial_kwh
    assert by_point[("m2", "total_energy")]["unit"] == "kWh"
    assert {r["quality"] for r in rows} == {"good"}
    assert {r["ts"] for r in rows} == {gateway_now().isoformat()}


async def test_a_poll_is_a_typed_snapshot_that_only_the_sink_stores(
    tcp_meters: SimFactory, outbox: Outbox
) -> None:
    sim = await tcp_meters("eastron-sdm630", 2)
    sink = OutboxSink(outbox)
    poller = BusPoller(tcp_bus(sim.address, [1, 2], "eastron-sdm630"), sink, now=gateway_now)
    try:
        snapshot = await poller.poll()
    finally:
        poller.close()
    assert outbox.stats().pending == 0  # polling stores nothing
    assert snapshot.not_polled == frozenset()
    by_point = {(v.meter, v.point.name): v for v in snapshot.values}
    assert len(by_point) == 2 * 18
    assert by_point[("m1", "voltage_l2")].value == 230.0
    assert {v.quality for v in snapshot.values} == {Quality.GOOD}
    assert await sink.store(snapshot) == 2 * 18
    assert {(r["meter"], r["point"]) for r in stored(outbox)} == set(by_point)


async def test_one_request_per_point_baseline_sends_nine_times_more(
    tcp_meters: SimFactory, outbox: Outbox
) -> None:
    sim = await tcp_meters("eastron-sdm630", 2)
    bus = tcp_bus(sim.address, [1, 2], "eastron-sdm630")
    naive = BusPoller(bus, OutboxSink(outbox), now=gateway_now, plan=Plan.PER_POINT)
    try:
        assert await naive.poll_once() == 2 * 18
    finally:
        naive.close()
    assert sim.injector.replies == {1: 18, 2: 18}


async def test_values_follow_the_load_curve_between_polls(
    tcp_meters: SimFactory, outbox: Outbox
) -> None:
    sim = await tcp_meters("eastron-sdm120", 1)
    poller = BusPoller(
        tcp_bus(sim.address, [1], "eastron-sdm120"), OutboxSink(outbox), now=gateway_now
    )
    try:
        await poller.poll_once()
        sim.clock.t += 3600.0
        await poller.poll_once()
    finally:
        poller.close()
    energy = [r["value"] for r in stored(outbox) if r["point"] == "import_energy"]
    meter = sim.meter(1)
    assert energy[0] == pytest.approx(meter.initial_kwh)
    assert energy[1] == pytest.approx(meter.energy_kwh(sim.clock.t), rel=1e-6)
    assert energy[1] > energy[0]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.NO_ANSWER, "MeterTimeoutError"),
        (Fault.EXCEPTION, "MeterExceptionCodeError"),
        (Fault.CORRUPT, "MeterFrameError"),
        (Fault.SLOW, "MeterTimeoutError"),
    ],
)
async def test_a_faulty_meter_goes_offline_others_keep_reporting(
    tcp_meters: SimFactory,
    outbox: Outbox,
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
    error: str,
) -> None:
    sim = await tcp_meters("eastron-sdm120", 3)
    sim.meter(2).fault = fault
    sim.meter(2).slow_s = 10  # far over the 0.3 s timeout: held until teardown
    clock = PollClock()
    bus = tcp_bus(sim.address, [1, 2, 3], "eastron-sdm120", offline_after=3, backoff_cap_s=60)
    poller = BusPoller(bus, OutboxSink(outbox), now=gateway_now, clock=clock, rand=lambda: 1.0)
    health = poller.meters[1].health
    caplog.set_level(logging.INFO, logger="edge.meters.health")
    try:
        for cycle in range(3):
            clock.t += 5
            assert await poller.poll_once() == 2 * 10, cycle
        assert health.status is MeterStatus.OFFLINE
        assert type(health.last_error).__name__ == error
        assert sorted({r["meter"] for r in stored(outbox)}) == ["m1", "m3"]

        # Offline: skipped until its backoff expires, not retried every cycle.
        before = sim.injector.replies.get(2, 0)
        await poller.poll_once()
        assert sim.injector.replies.get(2, 0) == before

        sim.meter(2).fault = Fault.NONE
        clock.t += 61  # past the capped backoff
        assert await poller.poll_once() == 3 * 10
        assert health.status is MeterStatus.OK
    finally:
        poller.close()
    transitions = [r.getMessage() for r in caplog.records if "[bus/m2]" in r.getMessage()]
    assert len(transitions) == 3, transitions  # ok->degraded, degraded->offline, recovered
    assert "ok -> degraded" in transitions[0]
    assert "degraded -> offline" in transitions[1]
    assert "recovered" in transitions[2]


@pytest.mark.parametrize(
    ("fault", "retries", "status"),
    [
        (Fault.SLOW, 0, MeterStatus.OK),  # 50 ms: within the 0.3 s timeout
        (Fault.NO_ANSWER, 1, MeterStatus.DEGRADED),  # one reply lost, the retry answers
    ],
)
async def test_a_meter_that_answers_in_the_end_is_read(
    tcp_meters: SimFactory, outbox: Outbox, fault: Fault, retries: int, status: MeterStatus
) -> None:
    sim = await tcp_meters("eastron-sdm120", 1)
    sim.meter(1).fault = fault
    sim.meter(1).slow_s = 0.05
    sim.meter(1).fault_replies = 1
    bus = tcp_bus(sim.address, [1], "eastron-sdm120", retries=retries)
    poller = BusPoller(bus, OutboxSink(outbox), now=gateway_now)
    try:
        assert await poller.poll_once() == 10
    finally:
        poller.close()
    assert poller.meters[0].health.status is status


async def test_dead_host_does_not_delay_meters_on_other_hosts(
    tcp_meters: SimFactory, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    dead = await tcp_meters("eastron-sdm120", 1)
    alive = await tcp_meters("eastron-sdm630", 2)
    dead.meter(1).fault = Fault.NO_ANSWER
    bus = ModbusBus.model_validate(
        {
            "name": "mixed",
            "tcp": alive.address,
            "timeout_s": 30,  # the dead meter would hold a naive poller for 30 s
            "devices": [
                {"id": "dead", "unit_id": 1, "profile": "eastron-sdm120", "tcp": dead.address},
                {"id": "a1", "unit_id": 1, "profile": "eastron-sdm630"},
                {"id": "a2", "unit_id": 2, "profile": "eastron-sdm630"},
            ],
        }
    )
    poller = BusPoller(bus, OutboxSink(outbox), now=gateway_now)
    try:
        assert await poller.poll_once(deadline_s=0.5) == 2 * 18  # returns at the deadline
    finally:
        poller.close()
    assert {r["meter"] for r in stored(outbox)} == {"a1", "a2"}
    assert "not polled: dead" in caplog.text


async def test_counter_rollover_is_good_and_a_swap_is_uncertain(
    tcp_meters: SimFactory, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    sim = await tcp_meters("eastron-sdm120", 1)  # energy counters have 7 digits
    meter = sim.meter(1)
    poller = BusPoller(
        tcp_bus(sim.address, [1], "eastron-sdm120"), OutboxSink(outbox), now=gateway_now
    )
    caplog.set_level(logging.INFO, logger="edge.meters.poller")

    def energy() -> tuple[float, str]:
        rows = [r for r in stored(outbox) if r["point"] == "import_energy"]
        return rows[-1]["value"], rows[-1]["quality"]

    try:
        # float32 holds whole kWh exactly up to 2**24, so a margin of 3 kWh is exact on the wire
        meter.roll_over_soon(sim.clock.t, margin_kwh=3.0)
        await poller.poll_once()
        assert energy()[0] == 9_999_997.0
        sim.clock.t += 86400  # a whole day at base_w: exactly base_w * 24 h
        await poller.poll_once()
        value, quality = energy()
        assert value == pytest.approx(meter.base_w * 24 / 1000 - 3.0, abs=0.01)
        assert quality == "good"
        assert "counter wrapped" in caplog.text

        meter.initial_kwh = 5000.0  # now a high reading, then the meter is replaced
        await poller.poll_once()
        meter.swap(sim.clock.t, initial_kwh=3.0)
        await poller.poll_once()
        assert energy() == (pytest.approx(3.0), "uncertain")
        assert "counter ran backwards" in caplog.text
    finally:
        poller.close()


async def test_a_value_beyond_the_wires_bound_is_a_bad_reading(
    tcp_meters: SimFactory, outbox: Outbox
) -> None:
    """A glitching meter's float32 can say 10^18 W: sent as it is, the cloud would refuse
    the whole batch (and the gateway resend it forever)."""
    sim = await tcp_meters("eastron-sdm120", 1)
    sim.meter(1).base_w = 1e18
    poller = BusPoller(
        tcp_bus(sim.address, [1], "eastron-sdm120"), OutboxSink(outbox), now=gateway_now
    )
    try:
        await poller.poll_once()
    finally:
        poller.close()
    rows = {r["point"]: r for r in stored(outbox)}
    assert (rows["power"]["value"], rows["power"]["quality"]) == (0.0, "bad")
    assert rows["voltage"]["quality"] == "good"


async def test_run_sleeps_between_polls_and_closes_on_cancel(
    tcp_meters: SimFactory, outbox: Outbox
) -> None:
    sim = await tcp_meters("eastron-sdm120", 1)
    bus = tcp_bus(sim.address, [1], "eastron-sdm120", poll_interval_s=0.1)
    stored_calls = 0
    third = asyncio.Event()

    def on_stored() -> None:
        nonlocal stored_calls
        stored_calls += 1
        if stored_calls == 3:
            third.set()

    poller = BusPoller(bus, OutboxSink(outbox, on_stored=on_stored), now=gateway_now)
    task = asyncio.create_task(poller.run(), name="poller")
    await asyncio.wait_for(third.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # ~0.1 s apart, not back to back: three cycles made few requests.
    assert sim.injector.replies[1] <= 2 * (stored_calls + 1)


async def test_a_stopped_poller_stores_the_cycle_under_way_then_returns(
    tcp_meters: SimFactory, outbox: Outbox
) -> None:
    """A bus replaced by a remote configuration loses no reading: its old poller, stopped
    while a slow meter is answering, stores that cycle before it returns."""
    sim = await tcp_meters("eastron-sdm120", 1)
    sim.meter(1).fault, sim.meter(1).slow_s = Fault.SLOW, 0.5
    bus = tcp_bus(sim.address, [1], "eastron-sdm120", timeout_s=5, poll_interval_s=3600)
    poller = BusPoller(bus, OutboxSink(outbox), now=gateway_now)
    running = asyncio.create_task(poller.run(), name="poller-bus")
    try:
        while not poller.requests:  # noqa: ASYNC110 - the request is on the wire now
            await asyncio.sleep(0.01)
        poller.stop()
        await asyncio.wait_for(running, 10)
    finally:
        running.cancel()
    assert {r["meter"] for r in stored(outbox)} == {"m1"}
    assert sim.injector.replies == {1: 2}
