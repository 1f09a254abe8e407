"""Deposit settlement at move-out (住房租赁条例, in force 2025-09-15).

refund = deposit - unpaid rent/fees - final prorated utilities - itemised damages. Every deduction
carries a reason; a negative refund becomes a final bill for the difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from cloud.billing.errors import BillingError


class DeductionKind(StrEnum):
    UNPAID_RENT = "unpaid_rent"
    UNPAID_FEES = "unpaid_fees"
    UTILITIES = "utilities"
    DAMAGE = "damage"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Deduction:
    kind: DeductionKind
    amount: int  # fen
    reason: str


@dataclass(frozen=True, slots=True)
class Settlement:
    deposit: int
    deductions: tuple[Deduction, ...]
    refund: int  # fen paid back to the tenant (≥ 0)
    final_bill: int  # fen the tenant still owes (≥ 0)


def settle_deposit(deposit: int, deductions: Sequence[Deduction]) -> Settlement:
    if deposit < 0:
        raise BillingError("deposit must not be negative")
    for d in deductions:
        if d.amount < 0:
            raise BillingError(f"deduction {d.kind} must not be negative")
        if not d.reason.strip():
            raise BillingError(f"deduction {d.kind} of {d.amount} fen needs a reason")
    kept = [d for d in deductions if d.amount > 0]
    rest = deposit - sum(d.amount for d in kept)
    return Settlement(deposit, tuple(kept), refund=max(rest, 0), final_bill=max(-rest, 0))
