"""The gateway's MQTT session with the cloud: sends the outbox, takes acks and signed commands."""
