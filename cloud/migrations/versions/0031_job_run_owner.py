"""job run owner: the process running a job and the end of its lease, to find runs it left

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.add_column(
            sa.Column("owner", sa.String(length=100), server_default="", nullable=False)
        )
        batch.add_column(
            sa.Column("holder", sa.String(length=100), server_default="", nullable=False)
        )
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("holder")
        batch.drop_column("owner")
