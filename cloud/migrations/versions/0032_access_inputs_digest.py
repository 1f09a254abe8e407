"""access inputs digest: the digest of what a gateway's last compile read, kept with its sync row

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # "": no compile recorded one yet, so the publisher's next look compiles the gateway once.
    op.add_column(
        "gateway_access",
        sa.Column("inputs_digest", sa.String(length=64), nullable=False, server_default=""),
    )


def downgrade() -> None:
    with op.batch_alter_table("gateway_access") as batch:
        batch.drop_column("inputs_digest")
