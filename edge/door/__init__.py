"""The door: camera frames → face decision → lock request and event, all local to the gateway."""
