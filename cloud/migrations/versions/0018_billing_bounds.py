"""billing bounds: hold kinds (back rent, run errors) and what a run skipped

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_holds") as batch:
        batch.add_column(sa.Column("period_end", sa.Date(), nullable=True))
        batch.add_column(
            sa.Column("kind", sa.String(length=16), server_default="usage", nullable=False)
        )
    with op.batch_alter_table("billing_runs") as batch:
        batch.add_column(sa.Column("skipped", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("billing_runs") as batch:
        batch.drop_column("skipped")
    with op.batch_alter_table("usage_holds") as batch:
        batch.drop_column("kind")
        batch.drop_column("period_end")
