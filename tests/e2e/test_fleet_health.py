"""Health over the real link: a gateway whose second meter does not answer sends `up/health`
through the broker; the cloud's ingest keeps the sample and raises `meter_silent` for that
meter; a clean stop is stored as offline (its alarm waits for the grace period, in the
rules); back online with the meter answering, the meter's alarm clears. The cloud's clock is
driven, so the rate bound on samples needs no waiting."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from anju.sim.meters import Fault
from cloud.ingest.worker import IngestWorker
from cloud.models import Alarm, Gateway, GatewayHealth
from cloud.models.maintenance import AlarmState
from edge.config import ModbusBus
from edge.health import HealthProbe
from edge.meters.poller import BusPoller
from edge.meters.sink import OutboxSink
from tests.cloud.conftest import Clock, add_portfolio
from tests.e2e.link_harness import SERVER_VARIANTS, Link, as_async, link_on, wait_until
from tests.edge.conftest import PollClock, SimFactory, tcp_meters

pytestmark = pytest.mark.timeout(90)
__all__ = ["tcp_meters"]  # the simulated meters' fixture


@pytest.fixture(params=SERVER_VARIANTS)
async def health_link(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Link]:
    async with link_on(request.param, tmp_path) as link:
        yield link


def open_alarms(link: Link) -> set[tuple[str, str]]:
    with link.sessions() as session:
        rows = session.execute(
            select(Alarm.kind, Alarm.key).where(Alarm.state != AlarmState.RESOLVED)
        ).all()
    return {(kind, key) for kind, key in rows}


async def test_health_reaches_the_cloud_and_drives_the_fleet_alarms(
    health_link: Link, tcp_meters: SimFactory
) -> None:
    link = health_link
    gid = link.gateway_id
    with link.sessions.begin() as session:
        prop, _, _ = add_portfolio(session, f"Org {gid}")
        session.get_one(Gateway, gid).property_id = prop.id
    sim = await tcp_meters("eastron-sdm120", 2)
    sim.meter(2).fault = Fault.NO_ANSWER
    bus = ModbusBus.model_validate(
        {"name": "bus", "tcp": sim.address, "timeout_s": 0.3, "retries": 0, "offline_after": 1,
         "devices": [{"id": f"m{u}", "unit_id": u, "profile": "eastron-sdm120"} for u in (1, 2)]}
    )  # fmt: skip
    outbox = link.open_outbox()
    store = link.config.store.path
    poll_clock = PollClock()
    poller = BusPoller(bus, OutboxSink(outbox), now=lambda: datetime.now(UTC), clock=poll_clock)
    cloud_clock = Clock(datetime.now(UTC))
    worker = IngestWorker(link.settings(), link.sessions, now=cloud_clock)
    try:
        await poller.poll_once()
        assert poller.meters[1].health.status.value == "offline"
        async with link.ingest(worker):
            async with link.uplink() as uplink:
                # set before the uplink's task first runs: its first session sends a sample
                uplink.health = HealthProbe(gid, store, [poller], [], started=cloud_clock())
                await wait_until(
                    as_async(lambda: ("meter_silent", f"{gid}/m2") in open_alarms(link)),
                    30,
                    "the silent meter's alarm",
                )
            # the clean stop said offline; the alarm waits for the grace period (the rules)
            assert ("gateway_offline", gid) not in open_alarms(link)
            assert link.gateway().online is False

            sim.meter(2).fault = Fault.NONE
            poll_clock.t += 600  # past the offline meter's backoff
            await poller.poll_once()
            cloud_clock.now += timedelta(minutes=1)  # the next sample is not too soon
            async with link.uplink() as uplink:
                uplink.health = HealthProbe(gid, store, [poller], [], started=cloud_clock())
                await wait_until(as_async(lambda: not open_alarms(link)), 30, "alarms to clear")
                await wait_until(link.drained, 30, "the readings to be stored")
    finally:
        poller.close()
    with link.sessions() as session:
        offline = session.scalars(
            select(GatewayHealth.meters_offline).order_by(GatewayHealth.id)
        ).all()
    assert offline == [1, 0]
    assert {row[1] for row in link.stored()} == {"m1", "m2"}
