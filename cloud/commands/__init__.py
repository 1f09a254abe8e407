"""Signed commands to gateways: the signing key, the commands table, the dispatcher."""
