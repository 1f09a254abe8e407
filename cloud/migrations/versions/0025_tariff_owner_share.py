"""RUBS owner share: the basis points of a tariff's common-area cost the owner absorbs

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tariffs") as batch:
        batch.add_column(
            sa.Column("owner_share_bp", sa.Integer(), server_default="0", nullable=False)
        )
        batch.create_check_constraint(
            "ck_tariffs_owner_share", "owner_share_bp BETWEEN 0 AND 10000"
        )


def downgrade() -> None:
    with op.batch_alter_table("tariffs") as batch:
        batch.drop_constraint("ck_tariffs_owner_share", type_="check")
        batch.drop_column("owner_share_bp")
