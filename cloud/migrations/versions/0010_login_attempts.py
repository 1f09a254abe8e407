"""login attempts per client address, so the login throttle holds across API processes

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_attempts_ip_ts", "login_attempts", ["ip", "ts"], unique=False)
    op.create_index("ix_login_attempts_ts", "login_attempts", ["ts"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_login_attempts_ts", table_name="login_attempts")
    op.drop_index("ix_login_attempts_ip_ts", table_name="login_attempts")
    op.drop_table("login_attempts")
