"""A page of meters' health: when each last reported and how many bad readings it sent lately,
judged by the same thresholds as the meter_silent and meter_comm_errors alarms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from cloud.db import as_utc
from cloud.maintenance.rules import RuleSettings
from cloud.models import Reading

# The alarm rules' defaults (silent after 3 polls, 3 bad readings an hour): the API's and the
# console's health and counters.
ALARM_RULES = RuleSettings()


class Health(StrEnum):
    OK = "ok"
    SILENT = "silent"  # nothing for the alarm's number of polls
    ERRORS = "errors"  # as many bad readings in the alarm's window as raise it
    UNBOUND = "unbound"  # no gateway: none of its readings count


@dataclass(frozen=True, slots=True)
class MeterHealth:
    last_reading: datetime | None
    bad_readings: int  # in the rules' window
    state: Health


def health(
    session: Session, meters: Sequence[tuple[str, str | None]], now: datetime, rules: RuleSettings
) -> dict[str, MeterHealth]:
    """By meter code, for (code, bound gateway) pairs: two grouped queries for the whole page,
    not two per meter."""
    bound = [(code, gw) for code, gw in meters if gw is not None]
    last: dict[tuple[str, str], datetime] = {}
    bad: dict[tuple[str, str], int] = {}
    if bound:
        mine = or_(*(and_(Reading.gateway_id == g, Reading.meter_id == c) for c, g in bound))
        keys = (Reading.gateway_id, Reading.meter_id)
        for gateway, meter, ts in session.execute(
            select(*keys, func.max(Reading.ts)).where(mine).group_by(*keys)
        ):
            last[gateway, meter] = as_utc(ts)
        since = now - timedelta(minutes=rules.window_min)
        for gateway, meter, n in session.execute(
            select(*keys, func.count())
            .where(mine, Reading.ts > since, Reading.quality == "bad")
            .group_by(*keys)
        ):
            bad[gateway, meter] = n
    silent_after = timedelta(seconds=rules.poll_s * rules.silent_polls)
    out = {}
    for code, gw in meters:
        seen, errors = last.get((gw or "", code)), bad.get((gw or "", code), 0)
        if gw is None:
            state = Health.UNBOUND
        elif errors >= rules.bad_readings:
            state = Health.ERRORS
        elif seen is None or now - seen > silent_after:
            state = Health.SILENT
        else:
            state = Health.OK
        out[code] = MeterHealth(seen, errors, state)
    return out
