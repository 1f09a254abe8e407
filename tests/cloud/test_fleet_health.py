"""Health samples on a real database: kept at a bounded rate, read back newest first through
the API, and turned into the fleet's alarms (disk low, backlog growing, meter silent, offline),
each raised once and cleared when the condition goes away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.ingest.health import BACKLOG_RECORDS, state_alarms, store_health
from cloud.ingest.store import store_batch
from cloud.jobs.maintenance import AlarmJobSettings
from cloud.maintenance import rules
from cloud.maintenance.rules import RuleSettings
from cloud.models import Alarm, Gateway, GatewayHealth, Role
from cloud.models.maintenance import AlarmState
from protocols.mqtt import health as h
from protocols.mqtt import messages as msg
from tests.cloud.conftest import Api

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def sample(gid: str, at: datetime, **fields: Any) -> h.Health:
    base: dict[str, Any] = {
        "gateway_id": gid, "seq": 1, "ts": at, "version": "0.1.0", "started": T0,
        "uptime_s": 100, "cpu_percent": 5.0, "memory_percent": 40.0,
        "memory_available_mb": 300.0, "disk_free_mb": 5000.0, "disk_free_percent": 50.0,
        "temperature_c": 48.5, "pending": 0, "dropped": 0, "doors": [],
        "buses": [{"name": "bus", "meters": 2, "offline": 0, "requests": 10}],
        "meters": [{"id": "m1", "bus": "bus", "status": "ok"},
                   {"id": "m2", "bus": "bus", "status": "ok"}],
    }  # fmt: skip
    return h.Health.model_validate({**base, **fields})


def feed(session: Session, *samples: tuple[h.Health, datetime]) -> int:
    kept = 0
    for body, received in samples:
        topic = f"anju/v1/{body.gateway_id}/up/health"
        n, rejects = store_health(session, [(topic, msg.encode(body), body)], received)
        assert rejects == []
        kept += n
        session.commit()
    return kept


def backlog_reported(session: Session, gid: str, pending: int, at: datetime) -> None:
    """The gateway's state carries the same backlog; the alarm rules run on it."""
    gateway = session.get(Gateway, gid)
    assert gateway is not None
    gateway.pending = pending
    rules.evaluate(session, at)
    session.commit()


def raised_count(session: Session, kind: str) -> int:
    return len(session.scalars(select(Alarm).where(Alarm.kind == kind)).all())


FLEET_KINDS = ("gateway_offline", "gateway_disk_low", "outbox_backlog", "meter_silent")


def open_alarms(session: Session) -> dict[tuple[str, str], str]:
    """The open fleet alarms (the world has alarms of its own)."""
    rows = session.scalars(
        select(Alarm).where(Alarm.state != AlarmState.RESOLVED, Alarm.kind.in_(FLEET_KINDS))
    ).all()
    return {(a.kind, a.key): a.subject for a in rows}


async def test_samples_are_kept_at_a_bounded_rate_and_read_newest_first(api: Api) -> None:
    gid = api.world.sites["P1"].gateway_id
    with api.sessions() as session:
        kept = feed(
            session,
            (sample(gid, T0), T0),
            (sample(gid, T0, cpu_percent=99.0), T0 + timedelta(seconds=1)),  # too soon: dropped
            (sample(gid, T0, cpu_percent=7.0), T0 + timedelta(seconds=60)),
        )
        assert kept == 2
        unknown = sample("gw-nobody", T0)
        _, rejects = store_health(session, [("t", b"x", unknown)], T0)
        assert [r.reason for r in rejects] == ["unknown_gateway"]
    r = await api.client.get(f"/api/v1/gateways/{gid}/health", headers=api.as_role(Role.MANAGER))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["cpu_percent"] for i in items] == [7.0, 5.0]
    assert items[0]["temperature_c"] == 48.5
    foreign = api.world.sites["P2"].gateway_id
    r = await api.client.get(
        f"/api/v1/gateways/{foreign}/health", headers=api.as_role(Role.MANAGER)
    )
    assert r.status_code == 404


async def test_fleet_alarms_raise_once_and_clear(api: Api) -> None:
    gid = api.world.sites["P1"].gateway_id
    minute = timedelta(minutes=1)
    offline_m2 = [{"id": "m1", "bus": "bus", "status": "ok"},
                  {"id": "m2", "bus": "bus", "status": "offline", "failures": 3,
                   "last_error": "unit 2: no answer"}]  # fmt: skip
    with api.sessions() as session:
        feed(
            session,
            (sample(gid, T0, disk_free_percent=4.0, pending=BACKLOG_RECORDS + 1), T0),
            (sample(gid, T0, pending=BACKLOG_RECORDS + 50, meters=offline_m2), T0 + minute),
        )
        assert set(open_alarms(session)) == {("meter_silent", f"{gid}/m2")}  # disk recovered
        feed(session, (sample(gid, T0, pending=BACKLOG_RECORDS + 90, meters=offline_m2),
                       T0 + 2 * minute))  # fmt: skip
        assert set(open_alarms(session)) == {
            ("meter_silent", f"{gid}/m2"),
            ("outbox_backlog", gid),  # above the mark and grown three samples in a row
        }
        # Down to a backlog the rules still call one: the alarm stays, raised once, however
        # often health and the rules take their turns (they used to clear and raise it).
        between = BACKLOG_RECORDS - 3000
        for step in (3, 4):
            feed(session, (sample(gid, T0, pending=between), T0 + step * minute))
            backlog_reported(session, gid, between, T0 + step * minute)
            assert ("outbox_backlog", gid) in open_alarms(session)
        assert raised_count(session, "outbox_backlog") == 1
        feed(session, (sample(gid, T0, pending=10), T0 + 5 * minute))
        backlog_reported(session, gid, 10, T0 + 5 * minute)
        assert open_alarms(session) == {}

        low = sample(gid, T0, disk_free_percent=3.0)
        feed(session, (low, T0 + 6 * minute), (low, T0 + 7 * minute))
        assert list(open_alarms(session)) == [("gateway_disk_low", gid)]
        # the first, resolved; the second, still open: no duplicate
        assert raised_count(session, "gateway_disk_low") == 2

        assert session.scalar(select(GatewayHealth.meters_offline).order_by(GatewayHealth.id)) == 0


async def test_the_offline_alarm_waits_for_its_grace_period(api: Api) -> None:
    """A clean stop (or the Will) raises nothing at once: a restart is not an incident. The
    rules raise it once the gateway has been offline for the grace period; its next online
    state clears it at once."""
    gid = api.world.sites["P1"].gateway_id
    grace = RuleSettings(offline_min=10)
    topic = f"anju/v1/{gid}/up/state"
    with api.sessions() as session:
        t = T0 + timedelta(days=1)
        offline = msg.State(gateway_id=gid, seq=1, ts=t, online=False)
        store_batch(session, [], [(topic, offline)], t)
        state_alarms(session, [offline], t)
        rules.evaluate(session, t + timedelta(minutes=9), grace)
        session.commit()
        assert ("gateway_offline", gid) not in open_alarms(session)
        rules.evaluate(session, t + timedelta(minutes=11), grace)
        session.commit()
        assert ("gateway_offline", gid) in open_alarms(session)
        online = offline.model_copy(update={"online": True, "ts": t + timedelta(minutes=12)})
        store_batch(session, [], [(topic, online)], t + timedelta(minutes=12))
        state_alarms(session, [online], t + timedelta(minutes=12))
        session.commit()
        assert ("gateway_offline", gid) not in open_alarms(session)


def test_the_grace_period_is_bounded() -> None:
    assert AlarmJobSettings(offline_min=5).offline_min == 5
    for minutes in (0, 10_081):
        with pytest.raises(ValidationError):
            AlarmJobSettings(offline_min=minutes)


def test_the_rules_backlog_mark_may_not_pass_the_health_mark() -> None:
    """Above it, the rules would clear what gateway health raises, and the next report would
    raise it again."""
    assert AlarmJobSettings(backlog_rows=BACKLOG_RECORDS).backlog_rows == BACKLOG_RECORDS
    with pytest.raises(ValidationError):
        AlarmJobSettings(backlog_rows=BACKLOG_RECORDS + 1)
