"""Prepaid utilities (预存): deduct each reading's charge from a balance, alert when it runs low.

Remote cut-off is only ever suggested where the contract allows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud.billing.errors import BillingError


@dataclass(frozen=True, slots=True)
class Deducted:
    balance: int  # fen after the charge (may go negative: usage happened)
    charge: int
    low: bool  # balance at or below the alert threshold
    crossed_low: bool  # this charge took it there: send one alert, not one per reading
    cutoff: bool  # exhausted and the contract allows a remote cut-off


def deduct(
    balance: int, charge: int, *, low_threshold: int, cutoff_allowed: bool = False
) -> Deducted:
    if charge < 0:
        raise BillingError("a prepaid charge must not be negative")
    after = balance - charge
    low = after <= low_threshold
    return Deducted(
        balance=after,
        charge=charge,
        low=low,
        crossed_low=low and balance > low_threshold,
        cutoff=cutoff_allowed and after <= 0,
    )
