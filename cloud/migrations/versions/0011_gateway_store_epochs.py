"""gateway store epochs: records keyed on (gateway, epoch, seq), marks per epoch

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        batch_op.add_column(sa.Column("epoch", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "gateway_epochs",
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("stored_seq", sa.BigInteger(), nullable=False),
        sa.Column("spans", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["gateway_id"], ["gateways.id"]),
        sa.PrimaryKeyConstraint("gateway_id", "epoch"),
    )
    # Stores from before epochs are epoch 0: their marks carry over.
    op.execute(
        "INSERT INTO gateway_epochs (gateway_id, epoch, stored_seq, spans)"
        " SELECT id, 0, stored_seq, '[]' FROM gateways"
    )
    for table in ("readings", "events"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("epoch", sa.BigInteger(), nullable=False, server_default="0")
            )
            batch_op.drop_constraint(f"uq_{table}_gateway_seq", type_="unique")
            batch_op.create_unique_constraint(
                f"uq_{table}_gateway_epoch_seq", ["gateway_id", "epoch", "seq"]
            )


def downgrade() -> None:
    bind = op.get_bind()
    for table in ("readings", "events"):
        # Records of later epochs would collide on (gateway, seq): refuse rather than lose them.
        later = bind.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE epoch <> 0")).scalar()  # noqa: S608
        if later:
            raise RuntimeError(f"{later} {table} of later store epochs; cannot downgrade")
    for table in ("readings", "events"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"uq_{table}_gateway_epoch_seq", type_="unique")
            batch_op.create_unique_constraint(f"uq_{table}_gateway_seq", ["gateway_id", "seq"])
            batch_op.drop_column("epoch")
    op.drop_table("gateway_epochs")
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        batch_op.drop_column("epoch")
