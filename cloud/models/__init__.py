"""All tables. Importing this package registers every model on `Base.metadata` (for Alembic)."""

from cloud.db import Base
from cloud.models.telemetry import Gateway, Quarantine, Reading

__all__ = ["Base", "Gateway", "Quarantine", "Reading"]
