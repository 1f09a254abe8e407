"""gateways belong to a property (nullable: registered before being placed)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 13:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        batch_op.add_column(sa.Column("property_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_gateways_property_id", ["property_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_gateways_property_id", "properties", ["property_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        batch_op.drop_constraint("fk_gateways_property_id", type_="foreignkey")
        batch_op.drop_index("ix_gateways_property_id")
        batch_op.drop_column("property_id")
