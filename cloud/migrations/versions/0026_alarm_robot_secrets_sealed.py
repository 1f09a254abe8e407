"""alarm subscriptions: the DingTalk robot's secret sealed at rest

A migration holds no field keys, so a secret stored in the clear cannot be sealed here: it is
dropped, and a robot that had one is subscribed again (its deliveries fail until then).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alarm_subscriptions") as batch:
        batch.add_column(sa.Column("secret_enc", sa.LargeBinary(), nullable=True))
        batch.drop_column("secret")


def downgrade() -> None:
    with op.batch_alter_table("alarm_subscriptions") as batch:
        batch.add_column(
            sa.Column("secret", sa.String(length=200), nullable=False, server_default="")
        )
        batch.drop_column("secret_enc")
