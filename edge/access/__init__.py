"""The gateway's side of access lists: the store that holds the applied list, the service that
verifies and applies `down/access` and decides at the doors (docs/access.md)."""
