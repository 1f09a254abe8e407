"""Consumption, tiered and time-of-use prices, common area and RUBS (BRIEF §5 examples)."""

from decimal import Decimal
from fractions import Fraction

import pytest

from cloud.billing.allocation import (
    OPERATOR,
    Basis,
    UnitBasis,
    allocate,
    common_usage,
)
from cloud.billing.consumption import (
    quantity,
    replacement_usage,
    spike_check,
    usage,
)
from cloud.billing.errors import BillingError, ReadingRejectedError
from cloud.billing.money import price
from cloud.billing.pricing import Tier, flat, tiered, time_of_use

TIERS = [
    Tier(Decimal(0), Decimal(100), price("0.10")),
    Tier(Decimal(100), Decimal(500), price("0.15")),
    Tier(Decimal(500), Decimal(1000), price("0.20")),
    Tier(Decimal(1000), None, price("0.30")),
]


def test_rollover_only_when_the_digit_count_allows_it() -> None:
    """5 digits: 99,950 -> 00,030 = 80."""
    got = usage(Decimal(99950), Decimal(30), digits=5)
    assert (got.quantity, got.rollover) == (Decimal(80), True)
    with pytest.raises(ReadingRejectedError):
        usage(Decimal(99950), Decimal(30))
    with pytest.raises(ReadingRejectedError):  # went backwards by 0.1: not a wrap
        usage(Decimal("100.5"), Decimal("100.4"), digits=5)
    assert usage(Decimal("1200.5"), Decimal("1250.25")).quantity == Decimal("49.75")


def test_meter_replacement() -> None:
    got = replacement_usage(
        old_previous=Decimal(1200),
        old_final=Decimal("1250.5"),
        new_initial=Decimal(0),
        new_current=Decimal(30),
    )
    assert (got.quantity, got.replaced) == (Decimal("80.5"), True)


def test_spike_hold() -> None:
    assert spike_check(Decimal(300), Decimal(100), multiple=Decimal("2.5")).held
    assert not spike_check(Decimal(250), Decimal(100), multiple=Decimal("2.5")).held
    assert not spike_check(Decimal(300), None, multiple=Decimal("2.5")).held


def test_float_readings_become_the_decimal_shown_on_the_meter() -> None:
    assert quantity(47.1) == Decimal("47.1")
    assert quantity(0.1 + 0.2) == Decimal("0.30000000000000004")  # a float that is not the display


def test_tiered_brief_example() -> None:
    """0-100 @0.10, 100-500 @0.15, 500-1000 @0.20; 750 units -> 10 + 60 + 50 = 120."""
    got = tiered(Decimal(750), TIERS)
    assert got.amount == 12000
    assert [(p.label, p.quantity) for p in got.parts] == [
        ("0-100", Decimal(100)),
        ("100-500", Decimal(400)),
        ("500-1000", Decimal(250)),
    ]


def test_tiered_with_usage_already_billed_this_year() -> None:
    # 80 already used: 20 @0.10 + 30 @0.15 = 2.00 + 4.50
    assert tiered(Decimal(50), TIERS, prior=Decimal(80)).amount == 650


def test_bad_tiers_are_refused() -> None:
    with pytest.raises(BillingError):
        tiered(
            Decimal(1),
            [Tier(Decimal(0), Decimal(100), price("0.1")), Tier(Decimal(120), None, price("0.2"))],
        )
    with pytest.raises(BillingError):
        tiered(Decimal(1), [Tier(Decimal(0), Decimal(100), price("0.1"))])


def test_time_of_use_one_register_per_zone() -> None:
    prices = {"peak": price("0.80"), "valley": price("0.30")}
    got = time_of_use({"peak": Decimal(100), "valley": Decimal(50)}, prices)
    assert got.amount == 9500
    with pytest.raises(BillingError, match="flat"):
        time_of_use({"flat": Decimal(1)}, prices)
    assert flat(Decimal("12.345"), price("0.5")).amount == 617  # 6.1725 -> 6.17


def test_rubs_brief_example() -> None:
    """$100, occupants 1 and 3 -> 25 and 75."""
    units = [
        UnitBasis(key="a", occupants=1, occupied_days=30, period_days=30),
        UnitBasis(key="b", occupants=3, occupied_days=30, period_days=30),
    ]
    got = allocate(10000, units, Basis.OCCUPANTS)
    assert got.shares == {"a": 2500, "b": 7500, OPERATOR: 0}
    owner = allocate(10000, units, Basis.OCCUPANTS, owner_fraction=Fraction(1, 10))
    assert owner.shares == {"a": 2250, "b": 6750, OPERATOR: 1000}


def test_common_area_by_area_sends_vacancy_to_the_operator() -> None:
    common = common_usage(Decimal(1000), [Decimal(400), Decimal(450)])
    assert (common.quantity, common.negative, common.high_loss) == (Decimal(150), False, False)
    units = [
        UnitBasis(key="A", area=Decimal(50), occupied_days=30, period_days=30),
        UnitBasis(key="B", area=Decimal(30), occupied_days=0, period_days=30),
        UnitBasis(key="C", area=Decimal(20), occupied_days=15, period_days=30),
    ]
    got = allocate(10000, units, Basis.AREA)
    assert got.shares == {"A": 5000, "B": 0, "C": 1000, OPERATOR: 4000}
    assert "by area: 50 of 100" in got.explain("A", Basis.AREA)


def test_equal_split_is_exact() -> None:
    units = [UnitBasis(key=k, occupied_days=31, period_days=31) for k in "xyz"]
    assert allocate(10000, units, Basis.EQUAL).shares == {
        "x": 3334,
        "y": 3333,
        "z": 3333,
        OPERATOR: 0,
    }


def test_usage_share_and_an_all_vacant_building() -> None:
    units = [
        UnitBasis(key="a", usage=Decimal(10), occupied_days=30, period_days=30),
        UnitBasis(key="b", usage=Decimal(30), occupied_days=30, period_days=30),
    ]
    assert allocate(999, units, Basis.USAGE).shares == {"a": 250, "b": 749, OPERATOR: 0}
    empty = [UnitBasis(key="a", occupants=0, occupied_days=0, period_days=30)]
    assert allocate(999, empty, Basis.OCCUPANTS).shares == {"a": 0, OPERATOR: 999}


def test_negative_common_is_flagged_not_billed() -> None:
    common = common_usage(Decimal(800), [Decimal(500), Decimal(400)])
    assert common.negative
    with pytest.raises(BillingError, match="metering fault"):
        allocate(-100, [UnitBasis(key="a", occupied_days=1, period_days=1)], Basis.EQUAL)
    assert common_usage(Decimal(1000), [Decimal(800)]).high_loss
