"""remote configuration: desired versions per gateway, and what the gateway reports applied

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_configs",
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["gateway_id"], ["gateways.id"]),
        sa.PrimaryKeyConstraint("gateway_id", "version"),
    )
    with op.batch_alter_table("gateways") as batch:
        batch.add_column(sa.Column("config_version", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("config_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gateways") as batch:
        batch.drop_column("config_error")
        batch.drop_column("config_version")
    op.drop_table("gateway_configs")
