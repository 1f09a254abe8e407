"""Lease rules as plain functions over plain data (no sessions, no clock)."""
