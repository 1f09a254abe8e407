"""Applying a payment to open charges: oldest due first, what is left kept as credit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from cloud.billing.errors import BillingError


@dataclass(frozen=True, slots=True)
class OpenItem:
    key: str  # invoice id or number
    due: date
    balance: int  # fen still owed (> 0)


@dataclass(frozen=True, slots=True)
class Applied:
    applied: dict[str, int]  # fen per item key
    credit: int  # over-payment kept on the account


def apply_payment(amount: int, items: Sequence[OpenItem]) -> Applied:
    if amount <= 0:
        raise BillingError("a payment must be positive")
    left = amount
    applied: dict[str, int] = {}
    for item in sorted(items, key=lambda i: (i.due, i.key)):
        if left == 0:
            break
        if item.balance <= 0:
            continue
        take = min(left, item.balance)
        applied[item.key] = take
        left -= take
    return Applied(applied, left)
