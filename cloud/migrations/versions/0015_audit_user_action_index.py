"""an index of audit events by user and action, for the per-user limit on personal-number search

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 04:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_audit_user_action_ts", "audit_events", ["user_id", "action", "ts"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_audit_user_action_ts", table_name="audit_events")
