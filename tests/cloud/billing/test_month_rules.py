"""The run's per-item rules on hand-built values: no database, no clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from cloud.billing.consumption import usage
from cloud.billing.errors import BillingError
from cloud.billing.lines import Line
from cloud.billing.month_rules import (
    BackRent,
    CommonArea,
    Held,
    Measured,
    PriorHold,
    Rent,
    RentRecord,
    Tenancy,
    Unbilled,
    Unreadable,
    common_area_lines,
    rent_lines,
    utility_line,
)
from cloud.billing.service.meters import MeterUsage
from cloud.billing.service.terms import LeaseRow, Month, TariffTerms
from cloud.models import HoldKind, LineKind, Proration, Tariff, TariffKind, Utility

JAN_1, JAN_31 = date(2026, 1, 1), date(2026, 1, 31)
TIERS = [
    {"lower": "0", "upper": "100", "price": "0.50"},
    {"lower": "100", "upper": "", "price": "0.80"},
]
ZONES = [
    {"zone": "peak", "point": "import_peak", "price": "1.00"},
    {"zone": "valley", "point": "import_valley", "price": "0.30"},
]


def tariff(
    kind: TariffKind = TariffKind.TIERED, tiers: list[dict[str, str]] = TIERS
) -> TariffTerms:
    return TariffTerms.of(Tariff(utility=Utility.ELECTRICITY, kind=kind, tiers=tiers,
                                 point="import_energy", spike_multiple="3", common_price="0",
                                 common_basis="area"))  # fmt: skip


def read(previous: str, current: str, meter: str = "e-1") -> MeterUsage:
    p, c = Decimal(previous), Decimal(current)
    return MeterUsage(meter, p, c, usage(p, c, digits=5))


def rule(
    got: Measured | Unreadable,
    *,
    hold: PriorHold | None = None,
    baseline: str | None = None,
    priced: TariffTerms | None = None,
) -> Line | Held | Unbilled | None:
    return utility_line(
        7,
        start=JAN_1,
        end=JAN_31,
        utility=Utility.ELECTRICITY,
        tariff=priced or tariff(),
        got=got,
        hold=hold,
        baseline=Decimal(baseline) if baseline is not None else None,
    )


def test_measured_usage_is_priced_by_tier() -> None:
    line = rule(Measured.of(read("1000", "1150")))
    assert isinstance(line, Line)
    assert (line.lease_id, line.kind, line.meter, line.start, line.end) == (
        7, LineKind.UTILITY, "e-1", JAN_1, JAN_31,
    )  # fmt: skip
    assert (line.amount, line.quantity) == (9000, Decimal(150))  # 100 @0.50 + 50 @0.80
    assert (line.previous_reading, line.current_reading) == (Decimal(1000), Decimal(1150))
    assert line.description == "electricity meter e-1: 1150 - 1000 = 150"
    assert line.detail["parts"] == [["0-100", "100", "1/2"], ["100-", "50", "4/5"]]  # yuan
    assert (line.due, line.detail["rollover"], line.detail["replaced"]) == (None, False, False)


def test_a_spike_beyond_the_multiple_of_the_baseline_is_held() -> None:
    got = Measured.of(read("1000", "1150"))  # 150 over 31 days: 4.84 a day
    assert rule(got, baseline="1.6") == Held("e-1", "usage 150 is 3.0x the baseline", Decimal(150))
    assert isinstance(rule(got, baseline="1.62"), Line)  # 2.99x: billed


def test_an_unreadable_meter_is_held_without_a_quantity() -> None:
    assert rule(Unreadable("e-2", "no reading")) == Held("e-2", "no reading", None)


def test_a_hold_waits_for_release_then_bills_its_quantity() -> None:
    got = Unreadable("e-2", "no reading")
    assert rule(got, hold=PriorHold(HoldKind.USAGE, released=False, quantity=None)) is None
    line = rule(got, hold=PriorHold(HoldKind.USAGE, released=True, quantity=Decimal(40)))
    assert isinstance(line, Line)
    assert (line.meter, line.quantity, line.amount) == ("e-2", Decimal(40), 2000)
    assert line.description == "electricity meter e-2: released hold = 40"
    assert (line.previous_reading, line.current_reading) == (None, None)


def test_a_released_spike_without_a_quantity_bills_the_measured_usage() -> None:
    got = Measured.of(read("1000", "1150"))
    line = rule(got, hold=PriorHold(HoldKind.USAGE, released=True, quantity=None), baseline="1")
    assert isinstance(line, Line)
    assert line.quantity == 150


def test_a_runs_own_error_hold_does_not_wait() -> None:
    line = rule(Measured.of(read("1000", "1010")), hold=PriorHold(HoldKind.ERROR, False, None))
    assert isinstance(line, Line)
    assert line.amount == 500


def test_time_of_use_prices_each_zone_and_refuses_a_corrected_total() -> None:
    zones = {"peak": read("100", "130"), "valley": read("200", "300")}
    tou = tariff(TariffKind.TIME_OF_USE, ZONES)
    line = rule(Measured.of_zones(zones), priced=tou)
    assert isinstance(line, Line)
    assert (line.quantity, line.amount) == (Decimal(130), 3000 + 3000)
    assert line.description == "electricity meter e-1: peak 30 + valley 100 = 130"
    assert line.detail["zones"] == [
        ["peak", "import_peak", "100", "130"],
        ["valley", "import_valley", "200", "300"],
    ]
    corrected = PriorHold(HoldKind.USAGE, released=True, quantity=Decimal(120))
    refused = rule(Measured.of_zones(zones), hold=corrected, priced=tou)
    assert isinstance(refused, Unbilled)
    assert refused.flag.startswith("not billed: lease 7 meter e-1: time-of-use usage")


def lease(start: date, end: date, *, rent: int = 300000, cycle: int = 1, **kw: Any) -> LeaseRow:
    fields: dict[str, Any] = {"terminated_on": None, "deposit_fen": rent, **kw}
    return LeaseRow(id=7, unit_id=1, primary_tenant_id=1, occupant_count=1, start_date=start,
                    end_date=end, rent_fen=rent, payment_cycle_months=cycle, due_days_before=7,
                    proration=Proration.CALENDAR_DAYS, **fields)  # fmt: skip


def summary(rent: Rent) -> list[tuple[LineKind, date, date, int, date | None]]:
    return [(x.kind, x.start, x.end, x.amount, x.due) for x in rent.lines]


NEW = RentRecord(through=None, deposited=False)


def test_the_first_month_bills_rent_falling_due_and_the_deposit() -> None:
    got = rent_lines(lease(JAN_1, date(2026, 12, 31)), NEW, month=Month(2026, 1), max_back=3)
    assert summary(got) == [
        (LineKind.RENT, JAN_1, JAN_31, 300000, JAN_1),
        (LineKind.DEPOSIT, JAN_1, date(2026, 12, 31), 300000, JAN_1),
        (LineKind.RENT, date(2026, 2, 1), date(2026, 2, 28), 300000, date(2026, 1, 25)),
    ]
    assert got.held is None
    assert got.lines[0].detail == {
        "explain": "2026-01-01..2026-01-31 full month 3,000.00",
        "monthly_rent_fen": 300000,
    }


def test_billed_periods_are_not_billed_again() -> None:
    record = RentRecord(through=date(2026, 2, 28), deposited=True)
    got = rent_lines(lease(JAN_1, date(2026, 12, 31)), record, month=Month(2026, 2), max_back=3)
    assert summary(got) == [
        (LineKind.RENT, date(2026, 3, 1), date(2026, 3, 31), 300000, date(2026, 2, 22))
    ]


def test_periods_older_than_max_back_months_become_one_hold() -> None:
    start = date(2025, 6, 1)
    got = rent_lines(lease(start, date(2026, 12, 31)), NEW, month=Month(2026, 1), max_back=3)
    assert got.held is not None
    assert (got.held.start, got.held.end, got.held.periods) == (start, date(2025, 9, 30), 4)
    assert got.held.reason == (
        "4 rent period(s) 2025-06-01 to 2025-09-30 (12,000.00) end more than 3 month(s) "
        "before 2026-01; release the hold to bill them"
    )
    kinds = [(x.kind, x.start) for x in got.lines]
    assert kinds[0] == (LineKind.DEPOSIT, start)  # the deposit is billed with the first bill
    assert kinds[1:3] == [(LineKind.RENT, date(2025, 10, 1)), (LineKind.RENT, date(2025, 11, 1))]
    released = RentRecord(
        through=date(2026, 2, 28),
        deposited=True,
        back=(BackRent(start, date(2025, 9, 30), released=True),),
    )
    again = rent_lines(lease(start, date(2026, 12, 31)), released, month=Month(2026, 2), max_back=3)
    assert [x.start for x in again.lines][:4] == [date(2025, m, 1) for m in (6, 7, 8, 9)]


def test_an_early_termination_credits_the_rent_billed_after_it() -> None:
    ended = lease(JAN_1, date(2026, 12, 31), terminated_on=date(2026, 2, 14))
    billed = ((date(2026, 2, 1), 280000), (date(2026, 3, 1), 310000))
    record = RentRecord(through=date(2026, 3, 31), deposited=True, after_end=billed)
    got = rent_lines(ended, record, month=Month(2026, 3), max_back=3)
    # February keeps 14/28 of the monthly rent (150000 of the 280000 billed); March comes back
    assert summary(got) == [
        (LineKind.ADJUSTMENT, date(2026, 2, 15), date(2026, 2, 15), -130000 - 310000,
         date(2026, 2, 15)),
    ]  # fmt: skip
    credited = RentRecord(through=date(2026, 3, 31), deposited=True, credited=True)
    assert rent_lines(ended, credited, month=Month(2026, 3), max_back=3).lines == ()


def test_a_lease_terminated_before_it_started_bills_nothing() -> None:
    never = lease(JAN_1, date(2026, 12, 31), terminated_on=date(2025, 12, 1))
    assert rent_lines(never, NEW, month=Month(2026, 1), max_back=3) == Rent(())


def shared(basis: str, master: str, subs: list[str], owner_bp: int = 0) -> CommonArea:
    priced = replace(tariff(), common_price="0.60", common_basis=basis, owner_share_bp=owner_bp)
    return common_area_lines(
        master="e-master",
        utility=Utility.ELECTRICITY,
        tariff=priced,
        master_used=Decimal(master),
        submeters=[Decimal(x) for x in subs],
        units=[(1, Decimal(50)), (2, Decimal(30)), (3, Decimal(20))],
        tenancies=[
            Tenancy(lease_id=11, unit_id=1, start=JAN_1, end=JAN_31, occupants=1),
            Tenancy(lease_id=12, unit_id=2, start=date(2026, 1, 15), end=JAN_31, occupants=3),
        ],
        usage={11: Decimal(150), 12: Decimal(110)},
        month=Month(2026, 1),
    )


def test_common_area_is_shared_by_area_and_days_with_vacancy_to_the_operator() -> None:
    got = shared("area", "300", ["150", "110", "0"])  # 40 kWh @0.60 = 24.00
    assert [(x.lease_id, x.amount, x.start, x.end) for x in got.lines] == [
        (11, 1200, JAN_1, JAN_31),
        (12, 395, date(2026, 1, 15), JAN_31),  # 30 m² x 17/31 days
    ]
    assert (got.operator_cost, got.utility_cost) == (805, 18000)  # the master's 300 @0.60
    assert got.flags == ()  # 13% losses are typical
    assert shared("area", "400", ["150", "110", "0"]).flags == ("common area e-master: losses 35%",)
    line = got.lines[0]
    assert (line.kind, line.meter, line.quantity, line.due) == (
        LineKind.COMMON_AREA, "e-master", Decimal(40), None,
    )  # fmt: skip
    assert line.description == "electricity common area, area share of 40 units at 0.60/unit"
    assert line.detail == {"basis": "area", "master": "300", "submeters": "260",
                           "building_amount_fen": 2400}  # fmt: skip


def test_common_area_by_occupants_is_shared_per_lease() -> None:
    got = shared("occupants", "300", ["150", "110", "0"])
    # occupants x days: 1 x 31 and 3 x 17 of 2400
    assert [(x.lease_id, x.amount) for x in got.lines] == [(11, 907), (12, 1493)]
    assert got.operator_cost == 0


def test_the_owner_share_is_kept_by_the_operator_before_the_basis_shares_the_rest() -> None:
    """24.00 by area with a 25 % owner share: the owner absorbs 6.00, the basis shares 18.00.
    Exact shares A 50/100 x 18.00 = 9.00, B 16.45/100 x 18.00 = 2.96129..., operator
    6.00 + 33.55/100 x 18.00 = 12.03870...: floors 900 + 296 + 1203 = 2399, the fen left over
    goes to the largest remainder (the operator's .87)."""
    got = shared("area", "300", ["150", "110", "0"], owner_bp=2500)
    assert [(x.lease_id, x.amount) for x in got.lines] == [(11, 900), (12, 296)]
    assert got.operator_cost == 1204
    assert sum(x.amount for x in got.lines) + got.operator_cost == 2400
    assert got.lines[0].detail["owner_share_bp"] == 2500


def test_an_owner_share_of_0_changes_nothing_and_10000_leaves_tenants_nothing() -> None:
    plain = shared("area", "300", ["150", "110", "0"])
    zero = shared("area", "300", ["150", "110", "0"], owner_bp=0)
    assert zero == plain
    assert "owner_share_bp" not in zero.lines[0].detail
    for basis in ("area", "equal", "occupants", "usage"):
        everything = shared(basis, "300", ["150", "110", "0"], owner_bp=10_000)
        assert all(x.amount == 0 for x in everything.lines), basis
        assert everything.operator_cost == 2400, basis


def test_an_owner_share_out_of_bounds_is_refused() -> None:
    for bp in (-1, 10_001):
        with pytest.raises(BillingError, match="owner_share_bp"):
            shared("area", "300", ["150", "110", "0"], owner_bp=bp)


def test_a_master_below_its_submeters_is_flagged_not_billed() -> None:
    got = shared("area", "250", ["150", "110", "0"])
    assert (got.lines, got.operator_cost, got.utility_cost) == ((), 0, 15000)
    assert got.flags == (
        "common area e-master: master 250 is below its submeters 260; check the meters "
        "(not billed)",
    )
