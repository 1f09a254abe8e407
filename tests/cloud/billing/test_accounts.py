"""Deposits, prepaid balances and payments."""

from datetime import date

import pytest

from cloud.billing.deposits import Deduction, DeductionKind, settle_deposit
from cloud.billing.errors import BillingError
from cloud.billing.payments import OpenItem, apply_payment
from cloud.billing.prepaid import deduct


def test_deposit_refund_after_itemised_deductions() -> None:
    got = settle_deposit(
        360000,
        [
            Deduction(DeductionKind.UNPAID_RENT, 100000, "rent 2026-06"),
            Deduction(DeductionKind.UTILITIES, 23540, "electricity Jun 1-15"),
            Deduction(DeductionKind.DAMAGE, 50000, "broken window, bedroom"),
        ],
    )
    assert (got.refund, got.final_bill) == (186460, 0)


def test_deductions_beyond_the_deposit_become_a_final_bill() -> None:
    got = settle_deposit(100000, [Deduction(DeductionKind.DAMAGE, 150000, "door replaced")])
    assert (got.refund, got.final_bill) == (0, 50000)


def test_a_deduction_needs_a_reason() -> None:
    with pytest.raises(BillingError, match="reason"):
        settle_deposit(100000, [Deduction(DeductionKind.DAMAGE, 100, "  ")])


def test_prepaid_alerts_once_and_cuts_off_only_if_allowed() -> None:
    first = deduct(5000, 3000, low_threshold=2500)
    assert (first.balance, first.low, first.crossed_low, first.cutoff) == (2000, True, True, False)
    second = deduct(first.balance, 2500, low_threshold=2500)
    assert (second.balance, second.crossed_low, second.cutoff) == (-500, False, False)
    assert deduct(first.balance, 2500, low_threshold=2500, cutoff_allowed=True).cutoff


def test_payment_pays_oldest_first_and_keeps_the_rest_as_credit() -> None:
    items = [
        OpenItem("INV-2", date(2026, 2, 1), 200000),
        OpenItem("INV-1", date(2026, 1, 1), 100000),
    ]
    assert apply_payment(250000, items).applied == {"INV-1": 100000, "INV-2": 150000}
    over = apply_payment(400000, items)
    assert (over.applied, over.credit) == ({"INV-1": 100000, "INV-2": 200000}, 100000)
    with pytest.raises(BillingError):
        apply_payment(0, items)
