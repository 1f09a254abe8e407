"""Alarm notifications: who hears of which alarm, and how it reaches them."""
