"""Billing's expected failures: each message says what to correct."""

from protocols.errors import AnjuError


class BillingError(AnjuError):
    """Input that no billing rule can price (bad terms, tiers, weights, deductions)."""


class ReadingRejectedError(BillingError):
    """A meter reading that cannot be turned into usage (it went backwards on a meter that cannot
    roll over); it is flagged for an operator instead of being billed."""
