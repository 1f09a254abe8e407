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
