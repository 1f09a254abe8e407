"""gateway registry columns, events

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 11:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("building", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("credential_hash", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("state_ts", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("pending", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("dropped", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("dropped_upto", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["gateway_id"], ["gateways.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gateway_id", "seq", name="uq_events_gateway_seq"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_source_ts", ["source", "ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_source_ts")
    op.drop_table("events")
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        for column in (
            "dropped_upto",
            "dropped",
            "pending",
            "state_ts",
            "credential_hash",
            "building",
        ):
            batch_op.drop_column(column)
