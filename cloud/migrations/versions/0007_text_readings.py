"""readings may carry text (a meter's serial number, firmware) instead of a number

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.alter_column("value", existing_type=sa.Float(precision=53), nullable=True)
        batch_op.add_column(sa.Column("text", sa.String(length=256), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM readings WHERE value IS NULL")
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.drop_column("text")
        batch_op.alter_column("value", existing_type=sa.Float(precision=53), nullable=False)
