"""Meter polling over Modbus."""
