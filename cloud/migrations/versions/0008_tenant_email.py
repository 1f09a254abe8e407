"""tenant email (encrypted, blind index) for email reminders

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_enc", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("email_bidx", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("email_bidx")
        batch_op.drop_column("email_enc")
