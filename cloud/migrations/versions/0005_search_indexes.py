"""prefix-search indexes on unit codes and tenant names

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 11:58:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.create_index(
            "ix_units_code", ["code"], unique=False, postgresql_ops={"code": "text_pattern_ops"}
        )
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tenants_name", ["name"], unique=False, postgresql_ops={"name": "text_pattern_ops"}
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_index("ix_tenants_name")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_index("ix_units_code")
