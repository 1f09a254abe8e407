"""Ingest: MQTT uplink → validated, idempotent rows → acknowledgement after commit."""
