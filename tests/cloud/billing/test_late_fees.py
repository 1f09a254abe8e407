from datetime import date
from fractions import Fraction

import pytest

from cloud.billing.errors import BillingError
from cloud.billing.late_fees import FeeKind, FeeMode, LateFeePolicy, late_fee, most_specific

DUE = date(2026, 1, 1)


def test_grace_days_do_not_count_the_due_date() -> None:
    """Due on the 1st, 3 grace days -> first fee on the 5th."""
    policy = LateFeePolicy(kind=FeeKind.FIXED, amount=5000, grace_days=3)
    assert policy.first_fee_day(DUE) == date(2026, 1, 5)
    assert late_fee(policy, due=DUE, balance=100000, as_of=date(2026, 1, 4)).amount == 0
    fee = late_fee(policy, due=DUE, balance=100000, as_of=date(2026, 1, 5))
    assert (fee.amount, fee.days, fee.through) == (5000, 1, date(2026, 1, 5))
    again = late_fee(
        policy, due=DUE, balance=100000, as_of=date(2026, 1, 9), charged_through=fee.through
    )
    assert again.amount == 0  # once means once


def test_daily_percentage_catches_up_and_is_idempotent() -> None:
    policy = LateFeePolicy(
        kind=FeeKind.PERCENT, rate=Fraction(5, 10000), mode=FeeMode.DAILY, grace_days=3
    )
    # 0.05 % of 10,000.00 = 5.00 a day; the 5th..10th is 6 days.
    fee = late_fee(policy, due=DUE, balance=1000000, as_of=date(2026, 1, 10))
    assert (fee.amount, fee.days) == (3000, 6)
    same_day = late_fee(
        policy, due=DUE, balance=1000000, as_of=date(2026, 1, 10), charged_through=fee.through
    )
    assert same_day.amount == 0
    # a partial payment left 4,000.00: two more days at 2.00
    later = late_fee(
        policy, due=DUE, balance=400000, as_of=date(2026, 1, 12), charged_through=fee.through
    )
    assert (later.amount, later.days) == (400, 2)


def test_cap_and_minimum_balance() -> None:
    policy = LateFeePolicy(
        kind=FeeKind.FIXED, amount=1000, mode=FeeMode.DAILY, cap=3500, min_balance=10000
    )
    assert late_fee(policy, due=DUE, balance=9999, as_of=date(2026, 1, 20)).amount == 0
    first = late_fee(policy, due=DUE, balance=10000, as_of=date(2026, 1, 4))  # 2nd..4th
    assert first.amount == 3000
    capped = late_fee(
        policy,
        due=DUE,
        balance=10000,
        as_of=date(2026, 1, 20),
        charged_through=first.through,
        already_charged=first.amount,
    )
    assert capped.amount == 500


def test_most_specific_policy_wins() -> None:
    lease = LateFeePolicy(kind=FeeKind.FIXED, amount=1)
    prop = LateFeePolicy(kind=FeeKind.FIXED, amount=2)
    org = LateFeePolicy(kind=FeeKind.FIXED, amount=3)
    assert most_specific(lease, prop, org) is lease
    assert most_specific(None, prop, org) is prop
    assert most_specific(None, None, org) is org
    assert most_specific(None, None, None) is None


def test_negative_policy_values_are_refused() -> None:
    with pytest.raises(BillingError):
        LateFeePolicy(kind=FeeKind.FIXED, amount=-1)


def test_a_daily_job_charges_the_one_new_day() -> None:
    policy = LateFeePolicy(kind=FeeKind.FIXED, amount=100, mode=FeeMode.DAILY)
    fee = late_fee(
        policy, due=DUE, balance=5000, as_of=date(2026, 1, 10), charged_through=date(2026, 1, 9)
    )
    assert (fee.amount, fee.days, fee.through) == (100, 1, date(2026, 1, 10))
    first = late_fee(policy, due=DUE, balance=5000, as_of=date(2026, 1, 2))
    assert (first.amount, first.days, first.through) == (100, 1, date(2026, 1, 2))
    # charged through a day before the first fee day: the count starts at the first fee day
    early = late_fee(
        policy, due=DUE, balance=5000, as_of=date(2026, 1, 3), charged_through=date(2025, 12, 1)
    )
    assert (early.amount, early.days) == (200, 2)


def test_nothing_to_charge_keeps_the_charged_through_day() -> None:
    policy = LateFeePolicy(kind=FeeKind.FIXED, amount=100, mode=FeeMode.DAILY)
    through = date(2026, 1, 10)
    fee = late_fee(policy, due=DUE, balance=5000, as_of=through, charged_through=through)
    assert (fee.amount, fee.days, fee.through) == (0, 0, through)
    paid = late_fee(policy, due=DUE, balance=0, as_of=date(2026, 1, 20), charged_through=through)
    assert (paid.amount, paid.days, paid.through) == (0, 0, through)


def test_a_zero_minimum_still_charges_nothing_on_a_settled_balance() -> None:
    policy = LateFeePolicy(kind=FeeKind.FIXED, amount=100, mode=FeeMode.DAILY, min_balance=0)
    assert late_fee(policy, due=DUE, balance=0, as_of=date(2026, 1, 5)).amount == 0
    assert late_fee(policy, due=DUE, balance=1, as_of=date(2026, 1, 5)).amount == 400
    credit = late_fee(policy, due=DUE, balance=-500, as_of=date(2026, 1, 5))
    assert (credit.amount, credit.days) == (0, 0)


def test_a_fully_used_cap_charges_nothing_more() -> None:
    policy = LateFeePolicy(kind=FeeKind.FIXED, amount=1000, mode=FeeMode.DAILY, cap=3000)
    full = late_fee(
        policy,
        due=DUE,
        balance=10000,
        as_of=date(2026, 1, 10),
        charged_through=date(2026, 1, 4),
        already_charged=3000,
    )
    assert (full.amount, full.days, full.through) == (0, 6, date(2026, 1, 10))
    # a cap lowered below what was charged never turns into a refund
    over = late_fee(policy, due=DUE, balance=10000, as_of=date(2026, 1, 10), already_charged=5000)
    assert over.amount == 0
    zero = LateFeePolicy(kind=FeeKind.FIXED, amount=1000, cap=0)
    assert late_fee(zero, due=DUE, balance=10000, as_of=date(2026, 1, 2)).amount == 0


def test_a_once_fee_is_not_charged_again_after_any_earlier_fee() -> None:
    policy = LateFeePolicy(kind=FeeKind.FIXED, amount=5000)
    again = late_fee(policy, due=DUE, balance=100000, as_of=date(2026, 1, 9), already_charged=1)
    assert (again.amount, again.days) == (0, 0)


def test_a_percentage_fee_rounds_half_up_per_charge() -> None:
    # 0.05 % of 1,001.00 = 50.05 fen -> 50; of 1,010.00 = 50.5 fen -> 51, twice
    policy = LateFeePolicy(
        kind=FeeKind.PERCENT, rate=Fraction(5, 10000), mode=FeeMode.DAILY, amount=999
    )
    assert policy.per_charge(100100) == 50
    fee = late_fee(policy, due=DUE, balance=101000, as_of=date(2026, 1, 3))
    assert (fee.amount, fee.days) == (102, 2)


@pytest.mark.parametrize(
    "bad",
    [
        {"amount": -1},
        {"rate": Fraction(-1, 10000)},
        {"grace_days": -1},
        {"min_balance": -1},
        {"cap": -1},
    ],
)
def test_each_negative_policy_value_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(BillingError, match="negative"):
        LateFeePolicy(kind=FeeKind.FIXED, **bad)  # type: ignore[arg-type]


def test_zero_policy_values_are_accepted() -> None:
    policy = LateFeePolicy(kind=FeeKind.FIXED, amount=0, grace_days=0, min_balance=0, cap=0)
    assert policy.first_fee_day(DUE) == date(2026, 1, 2)
