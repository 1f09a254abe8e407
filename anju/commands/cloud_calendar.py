"""`anju cloud calendar set|show YEAR`: a year's public holidays and make-up working days (调休),
as the State Council announces them each November; the SLA clock counts in this calendar."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click


@click.group()
def calendar() -> None:
    """The business calendar of the maintenance SLA."""


@calendar.command("set")
@click.argument("year", type=click.IntRange(2000, 2100))
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def calendar_set(year: int, file: Path) -> None:
    """Set YEAR from FILE: {"holidays": [ISO dates], "workdays": [ISO dates]}."""
    from anju.commands.cloud_admin import cloud_session
    from cloud.maintenance.calendar import CalendarError, YearDays
    from cloud.maintenance.sla import set_year

    try:
        raw = json.loads(file.read_text("utf-8"))
        days = YearDays.parse(year, raw["holidays"], raw["workdays"])
    except (ValueError, KeyError, TypeError, CalendarError) as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    with cloud_session() as (_settings, session, _keys):
        set_year(session, days, datetime.now(UTC))
        session.commit()
    click.echo(f"{year}: {len(days.holidays)} holidays, {len(days.workdays)} make-up working days")


@calendar.command("show")
@click.argument("year", type=click.IntRange(2000, 2100))
def calendar_show(year: int) -> None:
    """The holidays and make-up working days of YEAR in effect (shipped or set)."""
    from anju.commands.cloud_admin import cloud_session
    from cloud.maintenance.sla import load_calendar

    with cloud_session() as (_settings, session, _keys):
        known = load_calendar(session).years.get(year)
    if known is None:
        click.echo(f"{year}: not set; weekends only")
        return
    out = {"holidays": sorted(d.isoformat() for d in known.holidays),
           "workdays": sorted(d.isoformat() for d in known.workdays)}  # fmt: skip
    click.echo(json.dumps(out, indent=1))
