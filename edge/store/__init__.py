"""The gateway's store: one SQLite file with the outbox, replay memory and command results."""
