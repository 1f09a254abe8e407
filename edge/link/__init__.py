"""The gateway's link to the cloud: durable outbox and MQTT uplink."""
