import re
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import pytest

from cloud.billing.errors import BillingError
from cloud.billing.money import fen, price, round_half_up, split, split_by, yuan


def test_half_up_goes_away_from_zero() -> None:
    assert round_half_up(Fraction(5, 2)) == 3
    assert round_half_up(Fraction(-5, 2)) == -3
    assert round_half_up(Fraction(249, 100)) == 2
    assert round_half_up(Fraction(1800 * 17 * 100, 31)) == 98710


def test_parse_and_format_yuan() -> None:
    assert fen("1,800.00") == 180000
    assert fen("0.5") == 50
    assert fen(12) == 1200
    assert yuan(98710) == "987.10"
    assert yuan(123456789) == "1,234,567.89"
    assert yuan(-5) == "-0.05"
    assert price("0.588") == Fraction(588, 10)


@pytest.mark.parametrize("bad", ["1.001", "abc", "NaN"])
def test_amounts_that_are_not_fen_are_refused(bad: str) -> None:
    with pytest.raises(BillingError):
        fen(bad)


def test_split_largest_remainder_and_ties() -> None:
    assert split(10000, [1, 3]) == [2500, 7500]
    assert split(100, [1, 1, 1]) == [34, 33, 33]  # tie: the earlier part gets the fen
    assert split(2, [1, 2, 2]) == [0, 1, 1]  # largest remainders win
    assert split(1, [2, 3]) == [0, 1]
    assert split(3, [1, 2, 1, 2]) == [1, 1, 0, 1]  # equal remainders and weights: earlier
    assert split(2, [1, 3]) == [0, 2]  # equal remainder 0.5: the larger weight first
    assert split(-100, [1, 1, 1]) == [-34, -33, -33]
    assert split_by(7, {"b": 1, "a": 1}) == {"b": 4, "a": 3}


def test_split_refuses_weights_it_cannot_use() -> None:
    with pytest.raises(BillingError):
        split(100, [0, 0])
    with pytest.raises(BillingError):
        split(100, [1, -1])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(1, 2), 1),
        (Fraction(-1, 2), -1),
        (Fraction(49, 100), 0),
        (Fraction(-49, 100), 0),
        (Fraction(1, 3), 0),
        (Fraction(2, 3), 1),
        (Fraction(0), 0),
        (Fraction(3, 2), 2),
        (Fraction(7, 1), 7),
        (Fraction(-7, 1), -7),
        (Decimal("0.5"), 1),
        (Decimal("-2.5"), -3),
        (4, 4),
    ],
)
def test_half_up_below_one_and_on_whole_numbers(
    value: Fraction | Decimal | int, expected: int
) -> None:
    assert round_half_up(value) == expected


def test_format_zero_and_small_amounts() -> None:
    assert yuan(0) == "0.00"
    assert yuan(7) == "0.07"
    assert yuan(100) == "1.00"
    assert yuan(-100) == "-1.00"
    assert yuan(-123456) == "-1,234.56"


def test_parse_edges() -> None:
    assert fen(" 1,234.5 ") == 123450
    assert fen(Decimal("0.01")) == 1
    assert fen("-3.20") == -320
    assert fen("0") == 0
    assert price("0") == 0
    assert price(Decimal("1.2345")) == Fraction(12345, 100)
    assert price(2) == 200


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fen("abc"), "amount 'abc' is not a number"),
        (lambda: fen("Infinity"), "amount 'Infinity' is not a finite number"),
        (lambda: fen("1.001"), "more than two decimals"),
        (lambda: price("-0.1"), "price '-0.1' is negative"),
        (lambda: price("x"), "price 'x' is not a number"),
    ],
)
def test_parse_errors_name_the_field_and_the_text(call: Callable[[], object], message: str) -> None:
    with pytest.raises(BillingError, match=re.escape(message)):
        call()


def test_split_of_nothing_and_into_fractions() -> None:
    assert split(0, [1, 2]) == [0, 0]
    assert split(10, [Fraction(1, 3), Fraction(2, 3)]) == [3, 7]
    assert split(5, [Decimal("0.5"), Decimal("1.5")]) == [1, 4]
    assert split(7, [0, 1]) == [0, 7]
    assert split(-1, [1, 1]) == [-1, 0]
    with pytest.raises(BillingError, match="sum to zero"):
        split(1, [])
