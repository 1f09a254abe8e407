"""Billing domain rules as plain functions over frozen dataclasses (no web framework, no database).

Money is integer fen (分) throughout; quantities and prices are exact (Decimal / Fraction) and a
charge is rounded half-up once per invoice line. The rules and their worked examples are in
docs/billing.md.
"""
