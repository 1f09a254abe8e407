"""spare parts: the catalogue, each property's stock, movements, and what an order charges

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "spare_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("reorder_level", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint("price_fen >= 0", name="ck_spare_parts_price"),
        sa.CheckConstraint("reorder_level >= 0", name="ck_spare_parts_reorder"),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "code", name="uq_spare_parts_code"),
    )
    op.create_table(
        "part_stock",
        sa.Column("part_id", sa.Integer(), nullable=False),
        sa.Column("property_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity >= 0", name="ck_part_stock_not_negative"),
        sa.ForeignKeyConstraint(["part_id"], ["spare_parts.id"]),
        sa.ForeignKeyConstraint(["property_id"], ["properties.id"]),
        sa.PrimaryKeyConstraint("part_id", "property_id"),
    )
    op.create_table(
        "part_movements",
        sa.Column("id", BigId, nullable=False),
        sa.Column("part_id", sa.Integer(), nullable=False),
        sa.Column("property_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("by_user", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity != 0", name="ck_part_movements_quantity"),
        sa.ForeignKeyConstraint(["order_id"], ["work_orders.id"]),
        sa.ForeignKeyConstraint(["part_id"], ["spare_parts.id"]),
        sa.ForeignKeyConstraint(["property_id"], ["properties.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_part_movements_order", "part_movements", ["order_id"])
    op.create_index("ix_part_movements_store", "part_movements", ["property_id", "part_id", "id"])
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(
            sa.Column("labour_fen", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("charge_fen", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("charge_lease_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_work_orders_charge_lease", "leases", ["charge_lease_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_constraint("fk_work_orders_charge_lease", type_="foreignkey")
        batch.drop_column("charge_lease_id")
        batch.drop_column("charge_fen")
        batch.drop_column("labour_fen")
    op.drop_index("ix_part_movements_store", table_name="part_movements")
    op.drop_index("ix_part_movements_order", table_name="part_movements")
    op.drop_table("part_movements")
    op.drop_table("part_stock")
    op.drop_table("spare_parts")
