"""Maintenance: work orders with an SLA clock, alarms from the devices, and who hears of them."""
