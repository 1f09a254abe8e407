"""login throttle per (username, source) with a growing delay, instead of an account lock

Anyone could lock any known account for 15 minutes, and unknown usernames never locked, so the
answers told them apart. Failures now count per username and source address (unknown names
too); the users' failure count and lock go.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", "source"),
    )
    op.create_index("ix_login_failures_not_before", "login_failures", ["not_before"])
    # Plain ALTER TABLE (SQLite 3.35+): a batch copy would drop `users`, and with foreign keys
    # on that deletes every token and property grant through ON DELETE CASCADE.
    op.drop_column("users", "locked_until")
    op.drop_column("users", "failed_logins")


def downgrade() -> None:
    op.add_column(
        "users", sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("users", sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    op.drop_index("ix_login_failures_not_before", table_name="login_failures")
    op.drop_table("login_failures")
