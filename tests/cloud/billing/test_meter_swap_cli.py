"""`anju cloud meter swap` against a real migrated database: recorded and audited; another
organisation's meter, bad values and a second swap refused."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from cloud.db import make_engine, make_sessionmaker
from cloud.models import (
    AuditEvent,
    Building,
    Meter,
    MeterKind,
    MeterSwap,
    Organisation,
    Property,
    Unit,
    Utility,
)
from tests.cloud.test_cli_admin import env, run

__all__ = ["env"]  # the fixture, shared


def add_org(url: str, name: str, meters: list[str]) -> None:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine).begin() as s:
            org = Organisation(name=name)
            s.add(org)
            s.flush()
            prop = Property(org_id=org.id, name=f"{name}-p")
            s.add(prop)
            s.flush()
            bld = Building(property_id=prop.id, name="A")
            s.add(bld)
            s.flush()
            unit = Unit(property_id=prop.id, building_id=bld.id, code="101", floor=1,
                        area_m2=Decimal(40), base_rent_fen=100000)  # fmt: skip
            s.add(unit)
            s.flush()
            s.add_all(
                Meter(
                    org_id=org.id,
                    code=code,
                    property_id=prop.id,
                    building_id=bld.id,
                    unit_id=unit.id,
                    kind=MeterKind.SUBMETER,
                    utility=Utility.WATER,
                    profile="p",
                    digits=5,
                )
                for code in meters
            )
    finally:
        engine.dispose()


def swaps(url: str) -> list[tuple[str, str, Decimal]]:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            codes = {m.id: m.code for m in s.scalars(select(Meter))}
            return [(codes[w.old_meter_id], codes[w.new_meter_id], w.old_final)
                    for w in s.scalars(select(MeterSwap))]  # fmt: skip
    finally:
        engine.dispose()


def test_a_swap_from_the_shell(env: dict[str, str]) -> None:
    url = env["ANJU_DATABASE_URL"]
    add_org(url, "ours", ["w-1", "w-2"])
    add_org(url, "theirs", ["w-9"])
    at = "2026-02-28T16:00:00+08:00"
    args = ["--at", at, "--old-final", "99950.5", "--new-initial", "3"]
    # another organisation's meter is unknown in ours, like one nobody has
    r = run(env, "meter", "swap", "w-1", "w-9", *args, "--org", "ours")
    assert (r.exit_code, "no meter 'w-9' in ours" in r.output) == (1, True), r.output
    for bad in (
        ["--old-final", "-1"],
        ["--new-initial", "1e12"],
        ["--at", "2026-02-28"],
        ["--old-final", "100000"],  # beyond the meters' 5 digits
    ):
        r = run(env, "meter", "swap", "w-1", "w-2", *args, *bad, "--org", "ours")
        assert (r.exit_code, "swap refused" in r.output) == (1, True), (bad, r.output)
    assert swaps(url) == []
    r = run(env, "meter", "swap", "w-1", "w-2", *args, "--org", "ours")
    assert r.exit_code == 0, r.output
    assert "w-2 replaces w-1 from 2026-02-28T16:00:00+08:00" in r.output
    assert swaps(url) == [("w-1", "w-2", Decimal("99950.5000"))]
    r = run(env, "meter", "swap", "w-1", "w-2", *args, "--org", "ours")
    assert (r.exit_code, "in a swap already" in r.output) == (1, True), r.output
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            (event,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "meter.swap"))
            assert (event.username, '"via": "cli"' in event.detail) == ("cli", True)
    finally:
        engine.dispose()
