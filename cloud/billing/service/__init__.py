"""Billing over the database: plain functions taking a Session; the caller commits.

The rules themselves live in the pure modules of `cloud.billing`; this package only loads rows,
calls them, and writes the results (in bulk where a run touches many leases).
"""
