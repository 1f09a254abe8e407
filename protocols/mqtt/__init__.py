"""The edge ↔ cloud wire contract: topics and versioned message schemas (BRIEF §2)."""
