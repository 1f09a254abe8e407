"""A meter goes silent behind a real gateway and the alarm rules notice: the simulated meter
(Modbus TCP on loopback) stops answering the gateway's poller, the uplink keeps the gateway
heard through the real broker, the cloud's ingest stores what arrives, and one evaluation of
the set-based rules raises `meter_silent` and opens a work order; the meter answers again, its
readings arrive, and the next evaluation resolves the alarm and cancels the untouched order.
Both clocks are driven: readings carry the poller's time, ingest and the rules the cloud's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from anju.sim.meters import Fault
from cloud.db import as_utc
from cloud.ingest.worker import IngestWorker
from cloud.maintenance import rules
from cloud.models import (
    Alarm,
    AlarmState,
    Gateway,
    Meter,
    MeterKind,
    OrderSource,
    OrderState,
    Utility,
    WorkOrder,
)
from edge.config import ModbusBus
from edge.meters.poller import BusPoller
from edge.meters.sink import OutboxSink
from tests.cloud.conftest import Clock, add_portfolio
from tests.e2e.link_harness import SERVER_VARIANTS, Link, as_async, link_on, wait_until
from tests.edge.conftest import PollClock, SimFactory, tcp_meters

pytestmark = pytest.mark.timeout(60)
__all__ = ["tcp_meters"]  # the simulated meters' fixture
SETTINGS = rules.RuleSettings(poll_s=300, silent_polls=3)
SILENT = timedelta(seconds=SETTINGS.poll_s * SETTINGS.silent_polls)


@pytest.fixture(params=SERVER_VARIANTS)
async def link(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Link]:
    async with link_on(request.param, tmp_path) as on:
        yield on


def live(link: Link, at: datetime) -> bool:
    """The gateway is online and was last heard at `at` (the cloud's driven time)."""
    with link.sessions() as session:
        gateway = session.get_one(Gateway, link.gateway_id)
        return (
            bool(gateway.online)
            and gateway.last_seen is not None
            and as_utc(gateway.last_seen) == at
        )


def evaluate(link: Link, now: datetime) -> list[tuple[str, AlarmState, OrderState | None]]:
    """One evaluation of every rule at `now`; the meter alarms and their orders after it."""
    with link.sessions.begin() as session:
        rules.evaluate(session, now, SETTINGS)
    with link.sessions() as session:
        rows = session.execute(
            select(Alarm.key, Alarm.state, WorkOrder.state)
            .outerjoin(WorkOrder, WorkOrder.id == Alarm.work_order_id)
            .where(Alarm.kind == "meter_silent")
            .order_by(Alarm.id)
        ).all()
    return [(key, state, order) for key, state, order in rows]


async def test_a_silent_meter_raises_an_alarm_and_an_order_and_clears_when_it_answers(
    link: Link, tcp_meters: SimFactory
) -> None:
    gid = link.gateway_id
    with link.sessions.begin() as session:
        prop, bld, unit = add_portfolio(session, f"Org {gid}")
        session.get_one(Gateway, gid).property_id = prop.id
        session.add(Meter(org_id=prop.org_id, code="m1", property_id=prop.id,
                          building_id=bld.id, unit_id=unit.id, kind=MeterKind.SUBMETER,
                          utility=Utility.ELECTRICITY, profile="eastron-sdm120",
                          gateway_id=gid))  # fmt: skip
    sim = await tcp_meters("eastron-sdm120", 1)
    bus = ModbusBus.model_validate(
        {"name": "bus", "tcp": sim.address, "timeout_s": 0.3, "retries": 0, "offline_after": 1,
         "devices": [{"id": "m1", "unit_id": 1, "profile": "eastron-sdm120"}]}
    )  # fmt: skip
    start = datetime.now(UTC).replace(microsecond=0)
    edge_now, poll_clock, cloud_clock = [start], PollClock(), Clock(start)
    poller = BusPoller(bus, OutboxSink(link.open_outbox()), now=lambda: edge_now[0],
                       clock=poll_clock)  # fmt: skip
    worker = IngestWorker(link.settings(), link.sessions, now=cloud_clock)
    try:
        async with link.ingest(worker):
            # the meter answers: its readings reach the database, nothing fires
            await poller.poll_once()
            async with link.uplink():  # a clean stop says offline: evaluate while connected
                await wait_until(link.drained, 20, "the first readings to be stored")
                assert {row[1] for row in link.stored()} == {"m1"}
                assert evaluate(link, start + timedelta(minutes=1)) == []

            # it stops answering; the gateway stays heard (its uplink connects, online)
            sim.meter(1).fault = Fault.NO_ANSWER
            edge_now[0] = cloud_clock.now = start + SILENT + timedelta(minutes=1)
            poll_clock.t += 600
            await poller.poll_once()
            assert poller.meters[0].health.status.value == "offline"
            async with link.uplink():
                await wait_until(as_async(lambda: live(link, cloud_clock.now)), 20,
                                 "the gateway to be heard")  # fmt: skip
                firing = [("m1", AlarmState.ACTIVE, OrderState.NEW)]
                assert evaluate(link, cloud_clock.now) == firing
                assert evaluate(link, cloud_clock.now) == firing  # raised once
            with link.sessions() as session:
                order = session.scalars(select(WorkOrder)).one()
                assert (order.source, order.unit_id, order.category) == (
                    OrderSource.ALARM, unit.id, "meter"
                )  # fmt: skip

            # it answers again: fresh readings arrive and the next evaluation clears it
            sim.meter(1).fault = Fault.NONE
            edge_now[0] = cloud_clock.now = cloud_clock.now + timedelta(minutes=5)
            poll_clock.t += 600  # past the offline meter's backoff
            await poller.poll_once()
            async with link.uplink():
                await wait_until(link.drained, 20, "the readings after the silence")
                await wait_until(as_async(lambda: live(link, cloud_clock.now)), 20,
                                 "the gateway to be heard")  # fmt: skip
                assert evaluate(link, cloud_clock.now) == [
                    ("m1", AlarmState.RESOLVED, OrderState.CANCELLED)
                ]
    finally:
        poller.close()
    assert len({row[0] for row in link.stored()}) == len(link.stored())  # none twice
