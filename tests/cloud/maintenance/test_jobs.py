"""The alarm job runs once per slot on one instance, and raises what the rules find."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from cloud.db import make_engine, make_sessionmaker
from cloud.jobs.maintenance import (
    ALARMS_JOB,
    NOTIFY_JOB,
    OVERDUE_JOB,
    AlarmJobSettings,
    maintenance_jobs,
)
from cloud.jobs.scheduler import run_due
from cloud.models import Alarm, Gateway
from cloud.security.crypto import FieldKeys
from tests.cloud.world import NOW, build_world

TZ = ZoneInfo("Asia/Shanghai")


def test_runs_once_per_slot(database_url: str, keys: FieldKeys) -> None:
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    try:
        with sessions() as s:
            world = build_world(s, keys)
            gw = s.get_one(Gateway, world.sites["P1"].gateway_id)
            gw.last_seen, gw.online, gw.state_ts = NOW - timedelta(hours=1), False, NOW
            s.commit()
        jobs = maintenance_jobs(AlarmJobSettings(every_min=2))
        ran = run_due(sessions, jobs, now=NOW, holder="a", tz=TZ)
        assert sorted(ran) == sorted([ALARMS_JOB, OVERDUE_JOB, NOTIFY_JOB])
        assert run_due(sessions, jobs, now=NOW + timedelta(seconds=59), holder="b", tz=TZ) == []
        later = run_due(sessions, jobs, now=NOW + timedelta(minutes=2), holder="b", tz=TZ)
        assert sorted(later) == sorted([ALARMS_JOB, NOTIFY_JOB])
        with sessions() as s:
            offline = select(func.count()).select_from(Alarm).where(Alarm.kind == "gateway_offline")
            assert s.scalar(offline) == 1
    finally:
        engine.dispose()
