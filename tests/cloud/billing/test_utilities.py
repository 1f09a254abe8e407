"""Consumption, tiered and time-of-use prices, common area and RUBS (BRIEF §5 examples)."""

from decimal import Decimal
from fractions import Fraction

import pytest

from cloud.billing.allocation import (
    OPERATOR,
    Basis,
    CommonUsage,
    UnitBasis,
    allocate,
    common_usage,
)
from cloud.billing.consumption import (
    SpikeCheck,
    Usage,
    quantity,
    replacement_usage,
    spike_check,
    usage,
)
from cloud.billing.errors import BillingError, ReadingRejectedError
from cloud.billing.money import price
from cloud.billing.pricing import Priced, PricePart, Tier, flat, tiered, time_of_use

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


def test_an_owner_share_rounds_once_by_largest_remainder() -> None:
    """1.02 among occupants 1 and 3 with 25 % to the owner: exact shares 19.125, 57.375 and
    25.5 fen; floors 19 + 57 + 25 = 101 and the fen left goes to the largest remainder, the
    owner's .5. (Rounding the tenants' pool first, 76.5 -> 77, would give 19 / 58 / 25: the
    tenant's .375 winning the fen over the owner's .5.)"""
    units = [
        UnitBasis(key="a", occupants=1, occupied_days=30, period_days=30),
        UnitBasis(key="b", occupants=3, occupied_days=30, period_days=30),
    ]
    got = allocate(102, units, Basis.OCCUPANTS, owner_fraction=Fraction(1, 4))
    assert got.shares == {"a": 19, "b": 57, OPERATOR: 26}
    # One fen, half to the owner: exact 0.125, 0.375, 0.5 -> the owner's fen.
    assert allocate(1, units, Basis.OCCUPANTS, owner_fraction=Fraction(1, 2)).shares == {
        "a": 0, "b": 0, OPERATOR: 1,
    }  # fmt: skip
    everything = allocate(101, units, Basis.OCCUPANTS, owner_fraction=Fraction(1))
    assert everything.shares == {"a": 0, "b": 0, OPERATOR: 101}
    assert allocate(101, units, Basis.OCCUPANTS).shares == {"a": 25, "b": 76, OPERATOR: 0}


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


# ---- edges and secondary outputs ---------------------------------------------------------


def test_equal_consecutive_readings_are_zero_use() -> None:
    got = usage(Decimal("1250.5"), Decimal("1250.5"))
    assert got == Usage(Decimal(0), explanation="1250.5 - 1250.5")
    assert usage(Decimal(7), Decimal(12)).explanation == "12 - 7"


def test_rollover_edges_and_explanation() -> None:
    # exactly half the register's range still counts as a rollover; one unit more does not
    half = usage(Decimal(99950), Decimal(49950), digits=5)
    assert half == Usage(
        Decimal(50000), rollover=True, explanation="49950 + 100000 - 99950 (rollover)"
    )
    with pytest.raises(ReadingRejectedError, match="5-digit rollover"):
        usage(Decimal(99950), Decimal(49951), digits=5)
    # a previous reading the register cannot even show is no rollover
    with pytest.raises(ReadingRejectedError, match="5-digit rollover"):
        usage(Decimal(100000), Decimal(10), digits=5)
    with pytest.raises(ReadingRejectedError, match="digit count is unknown"):
        usage(Decimal(2), Decimal(1))


def swap(readings: tuple[int, int, int, int], digits: int | None = None) -> Usage:
    """Old meter previous and final, new meter initial and current."""
    old_previous, old_final, new_initial, new_current = map(Decimal, readings)
    return replacement_usage(
        old_previous=old_previous,
        old_final=old_final,
        new_initial=new_initial,
        new_current=new_current,
        digits=digits,
    )


def test_a_meter_swap_reports_a_rollover_of_either_meter() -> None:
    assert swap((9990, 5, 0, 30), digits=4) == Usage(
        Decimal(45),
        rollover=True,
        replaced=True,
        explanation="old meter 5 + 10000 - 9990 (rollover); new meter 30 - 0",
    )
    rolled_new = swap((100, 120, 9995, 5), digits=4)
    assert (rolled_new.quantity, rolled_new.rollover) == (Decimal(30), True)
    plain = swap((100, 120, 0, 5))
    assert (plain.quantity, plain.rollover, plain.replaced) == (Decimal(25), False, True)


def test_spike_thresholds_at_their_edges() -> None:
    assert spike_check(Decimal(250), Decimal(100), multiple=Decimal("2.5")) == SpikeCheck(
        held=False, ratio=Decimal("2.5")
    )
    assert spike_check(Decimal(251), Decimal(100), multiple=Decimal("2.5")) == SpikeCheck(
        held=True, ratio=Decimal("2.51")
    )
    # a baseline of 0 (a new unit) or below 1 unit is still a baseline only when positive
    assert spike_check(Decimal(5), Decimal(0), multiple=Decimal(2)) == SpikeCheck(False, None)
    assert spike_check(Decimal(5), Decimal(-1), multiple=Decimal(2)) == SpikeCheck(False, None)
    assert spike_check(Decimal(2), Decimal("0.5"), multiple=Decimal(2)) == SpikeCheck(
        held=True, ratio=Decimal(4)
    )
    # a multiple below 1 is allowed (hold anything above a fraction of the baseline)
    assert spike_check(Decimal(60), Decimal(100), multiple=Decimal("0.5")).held
    for bad in (Decimal(0), Decimal(-1)):
        with pytest.raises(BillingError, match="positive"):
            spike_check(Decimal(1), Decimal(1), multiple=bad)


def test_readings_of_every_type_become_the_decimal_shown() -> None:
    assert quantity(Decimal("47.10")) == Decimal("47.10")
    assert str(quantity(Decimal("47.10"))) == "47.10"
    assert str(quantity(12)) == "12"
    assert str(quantity("0012.50")) == "12.50"
    assert str(quantity(1e16)) == "1E+16"  # repr of the float, not str of an int


def test_a_master_reading_of_zero_has_no_loss_ratio() -> None:
    assert common_usage(Decimal(0), []) == CommonUsage(
        Decimal(0), None, negative=False, high_loss=False
    )
    dead_master = common_usage(Decimal(0), [Decimal(5)])
    assert (dead_master.quantity, dead_master.loss_ratio, dead_master.negative) == (
        Decimal(-5),
        None,
        True,
    )
    small = common_usage(Decimal("0.5"), [Decimal("0.25")])
    assert (small.loss_ratio, small.high_loss) == (Decimal("0.5"), True)
    exact_match = common_usage(Decimal(1000), [Decimal(600), Decimal(400)])
    assert (exact_match.quantity, exact_match.negative) == (Decimal(0), False)
    assert common_usage(Decimal(1000), [Decimal(850)]).loss_ratio == Decimal("0.15")
    assert not common_usage(Decimal(1000), [Decimal(850)]).high_loss
    tiny = common_usage(Decimal(1000), [Decimal("999.5")])
    assert (tiny.quantity, tiny.negative) == (Decimal("0.5"), False)


def test_allocation_refusals() -> None:
    unit = UnitBasis(key="a", occupied_days=1, period_days=1)
    with pytest.raises(BillingError, match="within the period"):
        allocate(100, [UnitBasis(key="a", occupied_days=0, period_days=0)], Basis.EQUAL)
    with pytest.raises(BillingError, match="within the period"):
        allocate(100, [UnitBasis(key="a", occupied_days=2, period_days=1)], Basis.EQUAL)
    with pytest.raises(BillingError, match="owner fraction"):
        allocate(100, [unit], Basis.EQUAL, owner_fraction=Fraction(3, 2))
    with pytest.raises(BillingError, match="unique"):
        allocate(100, [UnitBasis(key=OPERATOR, occupied_days=1, period_days=1)], Basis.EQUAL)
    with pytest.raises(BillingError, match="unique"):
        allocate(100, [unit, unit], Basis.EQUAL)
    with pytest.raises(BillingError, match="area must not be negative"):
        allocate(
            100, [UnitBasis(key="a", area=Decimal(-1), occupied_days=1, period_days=1)], Basis.AREA
        )


def test_allocation_over_a_one_day_period_and_its_weights() -> None:
    units = [
        UnitBasis(key="a", occupied_days=1, period_days=1),
        UnitBasis(key="b", occupied_days=0, period_days=1),
    ]
    got = allocate(101, units, Basis.EQUAL)
    assert got.shares == {"a": 51, "b": 0, OPERATOR: 50}
    assert got.weights == {"a": Fraction(1), "b": Fraction(0), OPERATOR: Fraction(1)}
    assert got.explain("a", Basis.EQUAL) == "by equal: 1 of 2"
    assert got.explain("nobody", Basis.EQUAL) == "by equal: 0 of 2"
    everyone_out = allocate(101, units[1:], Basis.OCCUPANTS)
    assert everyone_out.weights == {"b": Fraction(0), OPERATOR: Fraction(0)}
    assert everyone_out.explain("b", Basis.OCCUPANTS) == "by occupants: 0 of 0"


def test_a_first_tier_that_does_not_start_at_zero_is_refused() -> None:
    with pytest.raises(BillingError, match="start at 0"):
        tiered(Decimal(1), [Tier(Decimal(10), None, price("0.1"))])
    with pytest.raises(BillingError, match="start at 0"):
        tiered(Decimal(1), [])


def test_negative_usage_or_prior_is_refused_not_priced_at_zero() -> None:
    with pytest.raises(BillingError, match="negative"):
        tiered(Decimal(-1), TIERS)
    with pytest.raises(BillingError, match="negative"):
        tiered(Decimal(1), TIERS, prior=Decimal(-1))


def test_tier_shape_and_price_edges() -> None:
    with pytest.raises(BillingError, match="empty"):
        tiered(Decimal(1), [Tier(Decimal(0), Decimal(0), price("0.1")), *TIERS])
    with pytest.raises(BillingError, match="negative price"):
        tiered(Decimal(1), [Tier(Decimal(0), None, Fraction(-1))])
    free_then_cheap = [
        Tier(Decimal(0), Decimal(10), Fraction(0)),
        Tier(Decimal(10), None, Fraction(1, 2)),
    ]
    assert tiered(Decimal(14), free_then_cheap).amount == 2


def test_price_parts_carry_label_quantity_price_and_cost() -> None:
    got = tiered(Decimal(1200), TIERS)
    assert got.parts == (
        PricePart("0-100", Decimal(100), Fraction(10), Fraction(1000)),
        PricePart("100-500", Decimal(400), Fraction(15), Fraction(6000)),
        PricePart("500-1000", Decimal(500), Fraction(20), Fraction(10000)),
        PricePart("1000-", Decimal(200), Fraction(30), Fraction(6000)),
    )
    # a usage that ends on a tier boundary has no empty part for the next tier
    assert [p.label for p in tiered(Decimal(100), TIERS).parts] == ["0-100"]
    assert tiered(Decimal(0), TIERS) == Priced(0, ())
    peak = price("0.80")
    assert time_of_use({"peak": Decimal("1.5")}, {"peak": peak, "valley": price("0.3")}) == Priced(
        120, (PricePart("peak", Decimal("1.5"), peak, Fraction(120)),)
    )
    assert flat(Decimal(3), price("0.5")) == Priced(
        150, (PricePart("flat", Decimal(3), Fraction(50), Fraction(150)),)
    )
