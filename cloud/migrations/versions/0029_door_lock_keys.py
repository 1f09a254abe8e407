"""door lock keys: the fingerprint of the key each door's lock was provisioned with

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("doors", sa.Column("lock_key_fingerprint", sa.String(length=16), nullable=True))
    op.add_column(
        "doors", sa.Column("lock_key_registered_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("doors") as batch:
        batch.drop_column("lock_key_registered_at")
        batch.drop_column("lock_key_fingerprint")
