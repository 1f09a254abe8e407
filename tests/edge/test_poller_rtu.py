"""Modbus RTU over a serial line made of pseudo-terminals, against the real pymodbus RTU server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from anju.sim.meters import Fault
from edge.config import ModbusBus
from edge.meters.health import MeterStatus
from edge.meters.poller import BusPoller
from edge.meters.profiles import load_profile
from edge.meters.sink import OutboxSink
from edge.meters.transport import serial_transport
from edge.store.outbox import Outbox
from protocols.modbus.errors import (
    MeterExceptionCodeError,
    MeterFrameError,
    MeterTimeoutError,
)
from protocols.modbus.plan import plan_profile
from protocols.modbus.rtu import silent_interval_s
from tests.edge.conftest import SimFactory, gateway_now, make_bus

pytestmark = pytest.mark.timeout(30)


def rtu_bus(port: str, units: list[int], profile: str, **kw: Any) -> ModbusBus:
    return make_bus({"serial": port, "baud": 9600}, units, profile, **kw)


async def test_rtu_poll_reads_every_meter_with_merged_requests(
    rtu_meters: SimFactory, outbox: Outbox
) -> None:
    sim = await rtu_meters("chint-dtsu666", 3)
    poller = BusPoller(
        rtu_bus(sim.address, [1, 2, 3], "chint-dtsu666"), OutboxSink(outbox), now=gateway_now
    )
    try:
        assert await poller.poll_once() == 3 * 14
    finally:
        poller.close()
    assert sim.injector.replies == {1: 4, 2: 4, 3: 4}
    rows = {(r.payload["meter"], r.payload["point"]): r.payload for r in outbox.pending()}
    assert rows[("m2", "voltage_b")]["value"] == pytest.approx(230.0)
    assert rows[("m3", "import_energy")]["value"] == sim.meter(3).initial_kwh


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.NO_ANSWER, MeterTimeoutError),
        (Fault.CORRUPT, MeterFrameError),  # CRC failure
        (Fault.EXCEPTION, MeterExceptionCodeError),
        (Fault.SLOW, MeterTimeoutError),
    ],
)
async def test_rtu_faults_become_typed_errors_and_the_line_recovers(
    rtu_meters: SimFactory, fault: Fault, error: type[Exception]
) -> None:
    sim = await rtu_meters("eastron-sdm120", 2)
    sim.meter(2).fault = fault
    sim.meter(2).exception_code = 2
    sim.meter(2).slow_s = 10
    reads = plan_profile(2, load_profile("eastron-sdm120"))
    link = serial_transport(sim.address, baud=9600, timeout_s=0.3)
    try:
        with pytest.raises(error) as info:
            await link.read(reads[0])
        assert info.value.unit_id == 2  # type: ignore[attr-defined]
        if fault is Fault.EXCEPTION:
            assert "0x02 (illegal data address)" in str(info.value)
        # The neighbour on the same line still answers.
        other = plan_profile(1, load_profile("eastron-sdm120"))[1]
        assert len(await link.read(other)) == other.count
        if fault is not Fault.SLOW:  # a held slow reply would still be on its way
            sim.meter(2).fault = Fault.NONE
            assert len(await link.read(reads[0])) == reads[0].count
    finally:
        link.close()


async def test_dead_meter_on_a_serial_line_goes_offline(
    rtu_meters: SimFactory, outbox: Outbox
) -> None:
    sim = await rtu_meters("eastron-sdm120", 3)
    sim.meter(2).fault = Fault.NO_ANSWER
    bus = rtu_bus(sim.address, [1, 2, 3], "eastron-sdm120", offline_after=2)
    poller = BusPoller(bus, OutboxSink(outbox), now=gateway_now, rand=lambda: 1.0)
    try:
        for _ in range(2):
            assert await poller.poll_once() == 2 * 10
    finally:
        poller.close()
    assert poller.meters[1].health.status is MeterStatus.OFFLINE
    # Each dead poll cost one timeout, not one per planned read.
    assert sim.injector.replies[2] == 2


async def test_transactions_on_one_port_never_overlap_and_keep_the_silent_interval(
    rtu_meters: SimFactory,
) -> None:
    sim = await rtu_meters("eastron-sdm120", 4, baud=9600, paced=True)
    assert sim.line is not None
    profile = load_profile("eastron-sdm120")
    reads = [r for unit in (1, 2, 3, 4) for r in plan_profile(unit, profile)]
    link = serial_transport(sim.address, baud=9600, timeout_s=1.0)
    try:
        results = await asyncio.gather(*(link.read(r) for r in reads))  # all asked at once
    finally:
        link.close()
    assert [len(w) for w in results] == [r.count for r in reads]
    # Requests leave the client only after the previous reply has fully arrived plus t3.5.
    requests = [t for t, what, from_client in sim.line.events if what == "sent" and from_client]
    replies = [
        t for t, what, from_client in sim.line.events if what == "delivered" and not from_client
    ]
    assert len(requests) == len(replies) == len(reads)
    gap = silent_interval_s(9600)
    for reply_at, next_request_at in zip(replies, requests[1:], strict=False):
        assert next_request_at - reply_at >= gap * 0.9
